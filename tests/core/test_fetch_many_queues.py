"""A worker's fetch over many queues: queue order, then priority 9..0, stopping
once the batch is full, each queue's ``received`` entry and revoked set its own.

On one Redis (and a Sentinel master) one fetch.lua call reads up to
``QUEUES_PER_CALL`` queues, so a worker on many queues of which few hold
messages makes a few round trips, not one per empty queue; on Cluster a
call reads one queue (one slot). Real Redis, messages sent with ``delay()``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from django_taskq.broker import keys, topology
from django_taskq.broker.connection import get_broker
from django_taskq.worker import streams as ops
from tests.testapp.tasks import add

QUEUES = [f"many{i}" for i in range(40)]
RECEIVED = ops.Received("fetch@test", 1000)


def _send(queue: str, priority: int, n: int = 1) -> list[str]:
    return [add.apply_async((i, i), queue=queue, priority=priority).id for i in range(n)]


def _pending(client: Any, queue: str) -> int:
    return sum(int(client.xpending(s, keys.GROUP)["pending"]) for s in keys.queue_streams(queue))


def _received(client: Any, queue: str) -> list[dict[bytes, bytes]]:
    """The ``received`` entries of ``queue``'s events stream (its ``sent`` ones left out)."""
    return [fields for _id, fields in client.xrange(keys.events(queue)) if b"r" in fields]


def _check_order_and_full_stop() -> None:
    client = get_broker()
    ops.ensure_groups(client, keys.streams_for(QUEUES))
    early = _send("many3", 1, 2)
    top, bottom = _send("many20", 9), _send("many20", 0)
    late = _send("many39", 5, 2)
    client.zadd(keys.revoked("many20"), {bottom[0]: int(time.time() * 1000) + 60_000})

    taken = ops.fetch(client, QUEUES, "c:1:aa:0", 4, RECEIVED)
    assert [d.raw_task_id.decode() for d in taken] == early + top + bottom
    assert [d.queue for d in taken] == ["many3", "many3", "many20", "many20"]
    assert [d.revoked for d in taken] == [False, False, False, True]
    assert _pending(client, "many39") == 0  # the batch was full before it
    for queue, ids in (("many3", early), ("many20", top + bottom)):
        [entry] = _received(client, queue)
        assert json.loads(entry[b"r"]) == ids and entry[b"w"] == b"fetch@test"
    assert _received(client, "many39") == []

    rest = ops.fetch(client, QUEUES, "c:1:aa:0", 10, RECEIVED)
    assert [d.raw_task_id.decode() for d in rest] == late
    assert ops.fetch(client, QUEUES, "c:1:aa:0", 10, RECEIVED) == []


def test_many_queues_are_read_in_order_until_the_batch_is_full() -> None:
    _check_order_and_full_stop()


def test_many_queues_on_cluster_and_sentinel(topology: Any) -> None:
    _check_order_and_full_stop()


def _fetch_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval"))


def test_empty_queues_cost_a_call_per_queues_per_call_not_one_each() -> None:
    client = get_broker()
    assert not topology.is_cluster(client)
    ops.ensure_groups(client, keys.streams_for(QUEUES))
    last = _send("many39", 5)
    client.config_resetstat()
    assert [d.raw_task_id.decode() for d in ops.fetch(client, QUEUES, "c:1:aa:0", 8)] == last
    assert _fetch_calls(client) == math.ceil(len(QUEUES) / ops.QUEUES_PER_CALL)

    # A batch filled by the first queue is one call, whatever comes after it.
    first = _send("many0", 5, 3)
    client.config_resetstat()
    assert [d.raw_task_id.decode() for d in ops.fetch(client, QUEUES, "c:1:aa:0", 3)] == first
    assert _fetch_calls(client) == 1


def test_an_entry_of_other_fields_comes_back_as_it_is_from_any_queue() -> None:
    """The worker checks what it fetched (a malformed entry is dead-lettered there)."""
    client = get_broker()
    ops.ensure_groups(client, keys.streams_for(QUEUES))
    odd = client.xadd(keys.stream("many17", 5), {"x": "1"})
    [delivery] = ops.fetch(client, QUEUES, "c:1:aa:0", 8)
    assert delivery.stream == keys.stream("many17", 5)
    assert delivery.entry_id == odd.decode() and delivery.fields == {b"x": b"1"}
