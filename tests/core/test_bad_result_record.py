"""Whatever bytes sit under a result key, readers get one clear error naming the task and key."""

from __future__ import annotations

import pytest

from django_taskq.broker import keys
from django_taskq.broker.connection import get_backend
from django_taskq.exceptions import DecodeError
from django_taskq.result import AsyncResult

BAD = [b"\xff\xfe not json", b"[1, 2]", b'{"result": 3}', b'{"status": null}', b"42"]


@pytest.mark.parametrize("stored", BAD)
def test_state_and_get_name_the_task_and_key(stored: bytes) -> None:
    get_backend().set(keys.result("bad-record"), stored)
    found = AsyncResult("bad-record")
    for read in (lambda: found.state, lambda: found.get(timeout=0.2)):
        with pytest.raises(DecodeError) as caught:
            read()
        text = str(caught.value)
        assert "'bad-record'" in text and keys.result("bad-record") in text
        assert "forget()" in text
    found.forget()
    assert found.state == "PENDING"


def test_aget_names_the_task_and_key_too() -> None:
    import asyncio

    get_backend().set(keys.result("bad-async"), b"\x00\x01")
    with pytest.raises(DecodeError, match="'bad-async'"):
        asyncio.run(AsyncResult("bad-async").aget(timeout=0.2))


GROUP_BAD = [
    b"\xff\xfe not json",
    b"[1, 2]",
    b'{"id": "g"}',
    b'{"id": "g", "results": 5}',
    b'{"id": "g", "results": [{"task": "x"}]}',
    b'{"id": "g", "results": [{"id": 7}]}',
    b'{"id": "g", "results": ["abc"]}',
    b'{"id": "g", "results": [{"group": 3}]}',
    b"[" * 100_000,
]


@pytest.mark.parametrize("stored", GROUP_BAD, ids=range(len(GROUP_BAD)))
def test_group_restore_names_the_group_and_key(stored: bytes) -> None:
    from django_taskq.result_group import GroupResult

    get_backend().set(keys.group_meta("bad-group"), stored)
    with pytest.raises(DecodeError) as caught:
        GroupResult.restore("bad-group")
    text = str(caught.value)
    assert "'bad-group'" in text and keys.group_meta("bad-group") in text
    assert ".delete()" in text
    GroupResult("bad-group", []).delete()
    assert GroupResult.restore("bad-group") is None


def test_a_saved_group_still_restores() -> None:
    from django_taskq.result_group import GroupResult

    inner = GroupResult("inner", [AsyncResult("c", task_name="t.c")])
    GroupResult("outer", [AsyncResult("a", task_name="t.a"), inner]).save()
    restored = GroupResult.restore("outer")
    assert restored is not None and restored.as_dict() == {
        "id": "outer",
        "results": [
            {"id": "a", "task": "t.a"},
            {"group": {"id": "inner", "results": [{"id": "c", "task": "t.c"}]}},
        ],
    }


@pytest.mark.parametrize(
    "stored",
    [
        b'{"status": "SUCCESS", "date_done": "yesterday", "retries": "x"}',
        b'{"status": "SUCCESS", "date_done": 1e300, "retries": null}',
        b'{"status": "SUCCESS", "date_done": true, "retries": 1.5}',
    ],
)
def test_odd_fields_of_a_record_read_as_unknown(stored: bytes) -> None:
    """A record with a status but odd fields: its state and result read, the rest as unknown."""
    get_backend().set(keys.result("odd-fields"), stored)
    found = AsyncResult("odd-fields")
    assert (found.state, found.get(timeout=1), found.date_done, found.retries) == (
        "SUCCESS",
        None,
        None,
        0,
    )
