"""Any Python string goes through a task and back, and odd text from Redis breaks nothing.

A str can hold a lone surrogate: ``os.listdir()`` decodes a file name that is
not UTF-8 that way (surrogateescape), and JSON's ``"\\ud800"`` decodes to one.
UTF-8 cannot encode it. ``delay()`` raised a bare UnicodeEncodeError from
inside redis-py for such an argument; a task returning one made the worker's
flush fail for every write it carried; a message naming such a task or id
killed prefork children in a loop. Now message JSON is ASCII (escapes), so
every string round-trips, and a message whose names or ids cannot be
encoded is dead-lettered with its reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.control.dead import dead_letters
from django_taskq.exceptions import EncodeError
from tests.events.helpers import wait_dead_letters
from tests.testapp.tasks import add, echo, file_name_of, reject_with

pytestmark = pytest.mark.e2e

# (A str holding a surrogate *pair* comes back as the one character it encodes.)
ODD = ["a\udcff", "\ud800", "\U0010ffff", "日本語 \x00 é", {"k\udc80": ["\udcfe"]}]


def test_odd_strings_round_trip_through_a_worker(start_worker: Any) -> None:
    results = [echo.delay(value) for value in ODD]
    start_worker("-P", "prefork", "-c", "2")
    assert [r.get(timeout=30) for r in results] == ODD


def test_a_task_returning_a_lone_surrogate_stores_it_and_the_worker_goes_on(
    start_worker: Any,
) -> None:
    """The result was written raw: the worker's flush failed on it, with every write it held."""
    result = file_name_of.delay([0x66, 0xFF])
    start_worker("-P", "prefork", "-c", "1")
    assert result.get(timeout=30) == "f\udcff"
    assert add.delay(2, 3).get(timeout=30) == 5


def test_a_reject_reason_holding_a_lone_surrogate_is_dead_lettered(
    start_worker: Any, broker: Any
) -> None:
    """The reason went into the dead-letter XADD as it was, which UTF-8 cannot encode."""
    result = reject_with.delay("no such file: f\udcff")
    start_worker("-P", "prefork", "-c", "1")
    wait_dead_letters(broker, 1)
    [row] = dead_letters()
    assert row["i"] == result.id and "f\ufffd" in row["reason"]
    assert add.delay(2, 3).get(timeout=30) == 5


def test_a_message_naming_odd_text_is_dead_lettered_and_the_worker_goes_on(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-P", "prefork", "-c", "2")
    assert add.delay(1, 2).get(timeout=30) == 3
    children = sorted(worker.children())
    stream = keys.stream("default", 5)
    bodies = {
        "odd-task": {"task": "t\ud800"},
        "odd-queue": {"task": add.name, "args": [1, 2], "queue": "q\udcff"},
        "odd-root": {"task": add.name, "args": [1, 2], "root_id": "\ud800"},
        "odd-chord": {
            "task": add.name,
            "args": [1, 2],
            "group_index": 0,
            "chord": {"id": "c\udcff", "size": 1, "body": {"task": add.name}},
        },
    }
    for task_id, body in bodies.items():
        broker.xadd(stream, {"i": task_id, "b": json.dumps({"id": task_id, **body}), "dc": 0})
    wait_dead_letters(broker, len(bodies))
    reasons = {row["i"]: row["reason"] for row in dead_letters()}
    assert "field 'task' must be valid Unicode text" in reasons["odd-task"]
    assert "field 'queue' must be a queue name" in reasons["odd-queue"]
    assert "field 'root_id' must be valid Unicode text" in reasons["odd-root"]
    assert "field 'chord.id' must be valid Unicode text" in reasons["odd-chord"]
    assert add.delay(2, 3).get(timeout=30) == 5  # the worker goes on, whole
    assert sorted(worker.children()) == children
    assert "Traceback" not in worker.output
    for task_id in bodies:
        assert echo.AsyncResult(task_id).state == states.FAILURE


def test_msgpack_names_the_argument_it_cannot_encode() -> None:
    pytest.importorskip("msgpack")
    with pytest.raises(EncodeError) as raised:
        echo.apply_async(kwargs={"value": "a\udcff"}, serializer="msgpack")
    assert echo.name in str(raised.value) and "'value'" in str(raised.value)
