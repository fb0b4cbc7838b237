"""The ``received`` entry a fetch writes: one per fetch and queue, the reply unchanged.

The consumer's fetch steps (``worker/streams.py``) run in this process
against the test's real Redis, on messages sent with ``delay()``.
"""

from __future__ import annotations

import json
from typing import Any

from django_taskq.broker import keys
from django_taskq.worker import streams as ops
from tests.testapp.tasks import add

RECEIVED = ops.Received("fetch@test", 1000)


def received_entries(broker: Any, queue: str = "default") -> list[dict[bytes, bytes]]:
    return [fields for _id, fields in broker.xrange(keys.events(queue)) if b"r" in fields]


def sent(n: int, queue: str = "default", priority: int = 5) -> list[str]:
    return [add.apply_async((i, i), queue=queue, priority=priority).id for i in range(n)]


def test_a_fetch_writes_one_entry_for_its_batch_and_the_same_reply(broker: Any) -> None:
    low, high = sent(2, priority=1), sent(2, priority=9)
    ops.ensure_groups(broker, keys.streams_for(["default"]))
    plain = ops.fetch(broker, ["default"], "plain:1:aa:0", 2)  # the high ones, no entry
    assert [d.raw_task_id.decode() for d in plain] == high and received_entries(broker) == []
    taken = ops.fetch(broker, ["default"], "rec:1:aa:0", 10, RECEIVED)
    assert [d.raw_task_id.decode() for d in taken] == low
    assert all(set(d.fields) == {b"i", b"b", b"dc"} and not d.revoked for d in taken)
    [entry] = received_entries(broker)
    assert json.loads(entry[b"r"]) == low and entry[b"w"] == b"fetch@test"
    assert abs(int(entry[b"ts"]) / 1000 - taken[0].received) < 5
    # Nothing to fetch: no entry.
    assert ops.fetch(broker, ["default"], "rec:1:aa:0", 10, RECEIVED) == []
    assert len(received_entries(broker)) == 1


def test_a_blocking_read_writes_one_entry_per_queue(broker: Any) -> None:
    ids = {"alpha": sent(3, "alpha"), "beta": sent(1, "beta")}
    streams = keys.streams_for(["alpha", "beta"])
    ops.ensure_groups(broker, streams)
    taken = ops.block_fetch(broker, streams, "rec:1:aa:0", 10, 100, RECEIVED)
    assert sorted(d.raw_task_id.decode() for d in taken) == sorted(ids["alpha"] + ids["beta"])
    for queue in ("alpha", "beta"):
        [entry] = received_entries(broker, queue)
        assert sorted(json.loads(entry[b"r"])) == sorted(ids[queue])


def test_an_events_key_of_the_wrong_type_loses_no_fetch(broker: Any) -> None:
    ids = sent(2)
    broker.delete(keys.events("default"))
    broker.set(keys.events("default"), "not a stream")
    ops.ensure_groups(broker, keys.streams_for(["default"]))
    taken = ops.fetch(broker, ["default"], "rec:1:aa:0", 1, RECEIVED)
    assert [d.raw_task_id.decode() for d in taken] == ids[:1]
    streams = keys.streams_for(["default"])
    rest = ops.block_fetch(broker, streams, "rec:1:aa:0", 10, 100, RECEIVED)
    assert [d.raw_task_id.decode() for d in rest] == ids[1:]
    assert broker.get(keys.events("default")) == b"not a stream"
