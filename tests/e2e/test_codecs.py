"""Serializers and compression with a real worker: what it accepts it runs, the rest it refuses.

Each test queues its messages first and checks the bodies in the stream,
then starts the worker (``TASKQ_TEST_ACCEPT_CONTENT`` sets its
TASKQ_ACCEPT_CONTENT; ``TASKQ_TEST_WITHOUT`` makes a library unimportable in
it, as when it is not installed; see tests/settings.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.control.dead import dead_letters
from django_taskq.exceptions import DecodeError
from django_taskq.messages import dumps
from tests.events.helpers import read_events, wait_dead_letters
from tests.testapp.tasks import add, msgpack_types, zlib_echo, zstd_echo

pytestmark = pytest.mark.e2e


def _big() -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"customer {i}", "note": "paid in full", "n": i / 7} for i in range(500)
    ]


def _bodies(broker: redis.Redis) -> list[bytes]:
    return [fields[b"b"] for _, fields in broker.xrange(keys.stream("default", 5))]


def _accepting(*content: str, without: str = "") -> dict[str, str]:
    env = {"TASKQ_TEST_ACCEPT_CONTENT": ",".join(content)}
    if without:
        env["TASKQ_TEST_WITHOUT"] = without
    return env


def test_a_msgpack_task_gets_every_tagged_type_as_sent(
    start_worker: Any, broker: redis.Redis
) -> None:
    values = [
        dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.UTC),
        dt.date(2026, 1, 2),
        dt.time(3, 4, 5),
        dt.timedelta(seconds=90.5),
        Decimal("19.99"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xff",
        {1, 2},
        (1, "two"),
    ]
    result = msgpack_types.delay(values)
    assert _bodies(broker)[0].startswith(b"msgpack:")
    start_worker("-P", "solo", env=_accepting("json", "msgpack"))
    out = result.get(timeout=30)
    assert out["types"] == [type(v).__name__ for v in values]
    assert out["values"][:8] == values[:8]
    assert out["values"][8] == [1, "two"]  # the result is JSON: a tuple comes back as a list


def test_a_zlib_task_and_its_compressed_result(start_worker: Any, broker: redis.Redis) -> None:
    value = _big()
    result = zlib_echo.delay(value)
    body = _bodies(broker)[0]
    assert body.startswith(b"json+zlib:") and len(body) < len(dumps(value)) / 3
    start_worker("-P", "solo", env=_accepting("json", "zlib"))
    assert result.get(timeout=30) == value
    raw = broker.get(keys.result(result.id))
    assert raw is not None
    assert raw.startswith(b'{"status":"SUCCESS","result":{"__taskq__":"zlib","v":"')
    assert len(raw) < len(dumps(value)) / 3


def test_a_msgpack_zstd_task_and_its_compressed_result(
    start_worker: Any, broker: redis.Redis
) -> None:
    value = _big()
    result = zstd_echo.delay(value)
    assert _bodies(broker)[0].startswith(b"msgpack+zstd:")
    start_worker("-P", "prefork", "-c", "1", env=_accepting("json", "msgpack", "zstd"))
    assert result.get(timeout=30) == value
    raw = broker.get(keys.result(result.id))
    assert raw is not None and raw.startswith(b'{"status":"SUCCESS","result":{"__taskq__":"zstd"')


def test_refused_messages_are_dead_lettered_with_their_reason_and_the_worker_goes_on(
    start_worker: Any, broker: redis.Redis
) -> None:
    refused = [msgpack_types.delay([1]), zlib_echo.delay(_big())]
    before = add.delay(2, 3)
    worker = start_worker("-P", "solo", env=_accepting("json"))
    assert before.get(timeout=30) == 5
    with pytest.raises(DecodeError, match=r"add 'msgpack' to TASKQ_ACCEPT_CONTENT"):
        refused[0].get(timeout=30)
    with pytest.raises(DecodeError, match=r"add 'zlib' to TASKQ_ACCEPT_CONTENT"):
        refused[1].get(timeout=30)
    wait_dead_letters(broker, 2)  # on Cluster they land a round trip after the results
    reasons = {row["i"]: row["reason"] for row in dead_letters()}
    assert "message is msgpack but this worker accepts only ['json']" in reasons[refused[0].id]
    assert "message is compressed with zlib" in reasons[refused[1].id]
    assert add.delay(1, 1).get(timeout=30) == 2  # after the flush of the refusals
    assert worker.process.poll() is None
    # Their dead events (and counters) name the task: read from the refused body alone.
    dead = {e["id"]: e["n"] for e in read_events(broker) if e["k"] == "dead"}
    assert dead == {refused[0].id: msgpack_types.name, refused[1].id: zlib_echo.name}


def test_a_worker_without_zstandard_will_not_start_accepting_zstd(start_worker: Any) -> None:
    worker = start_worker(env=_accepting("json", "zstd", without="zstandard"), wait_ready=False)
    assert worker.wait(60) != 0
    assert "taskq.E006" in worker.output
    assert "pip install django-taskq-streams[zstd]" in worker.output


def test_a_worker_without_zstandard_dead_letters_zstd_messages_saying_what_to_install(
    start_worker: Any, broker: redis.Redis
) -> None:
    lost = zstd_echo.delay(_big())
    after = add.delay(1, 2)
    worker = start_worker(
        "-P",
        "solo",
        "--skip-checks",  # taskq.E006 would stop it (the test above)
        env=_accepting("json", "msgpack", "zstd", without="zstandard"),
    )
    assert after.get(timeout=30) == 3
    with pytest.raises(DecodeError, match=r"zstd needs the zstandard package: pip install"):
        lost.get(timeout=30)
    assert lost.state == states.FAILURE
    wait_dead_letters(broker, 1)
    [row] = dead_letters()
    assert row["i"] == lost.id and "django-taskq-streams[zstd]" in row["reason"]
    assert worker.process.poll() is None
