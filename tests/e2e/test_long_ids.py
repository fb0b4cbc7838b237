"""Task ids at the limit a worker takes (255 bytes of UTF-8), and past it.

A worker dead-letters an entry whose id is not 1 to 255 bytes of UTF-8
without a newline. ``apply_async(task_id=...)`` used to accept any string,
so a longer id (255 emoji are 1,020 bytes) was sent and then dead-lettered
at the worker; it is now refused when it is given. The longest id a
worker takes runs on a prefork worker while its heartbeats (which read
what each child runs from shared memory) go by.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e_helpers import HeartbeatRounds
from tests.faults.helpers import wait_until
from tests.testapp.tasks import add, gated

pytestmark = pytest.mark.e2e


def test_the_longest_task_id_runs_on_prefork_and_the_worker_stays_whole(
    start_worker: Any, broker: Any
) -> None:
    task_id = "\U0001f600" * 63 + "abc"  # 255 bytes of UTF-8
    assert len(task_id.encode()) == 255
    gate = f"gate:{uuid.uuid4().hex}"
    worker = start_worker("-P", "prefork", "-c", "1")
    result = gated.apply_async((gate,), task_id=task_id)
    assert broker.blpop([f"{gate}:started"], timeout=8) is not None
    beats = HeartbeatRounds(broker)
    assert wait_until(lambda: beats.since() >= 2, timeout=30), "no two heartbeats in 30 s"
    broker.rpush(gate, 1)
    assert result.get(timeout=30) > 0
    assert result.id == task_id
    assert worker.process.poll() is None
    assert not [line for line in worker.lines if "Traceback" in line], worker.output


@pytest.mark.parametrize(
    ("task_id", "error", "says"),
    [
        (
            "\U0001f600" * 64,
            ValueError,
            "task_id is 256 bytes in UTF-8; a worker takes at most 255",
        ),
        ("x" * 256, ValueError, "task_id is 256 bytes in UTF-8"),
        ("two\nlines", ValueError, "task_id must not contain a newline"),
        ("\udcff-lone-surrogate" * 4, ValueError, "task_id must be valid Unicode text"),
        (12345, TypeError, "task_id must be a string, not int"),
    ],
)
def test_a_task_id_a_worker_would_refuse_is_refused_when_given(
    task_id: Any, error: type[Exception], says: str, broker: Any
) -> None:
    with pytest.raises(error) as raised:
        add.apply_async((1, 2), task_id=task_id)
    assert "tests.testapp.tasks.add" in str(raised.value) and says in str(raised.value)
    assert broker.dbsize() == 0  # nothing was sent


def test_a_uuid_object_is_taken_as_its_text(broker: Any) -> None:
    """Celery's JSON serializer writes a uuid.UUID as its text; so does apply_async here."""
    given = uuid.uuid4()
    assert add.apply_async((1, 2), task_id=given).id == str(given)
