"""A worker flush: one settle.lua call per queue holds its acks, counters and events.

These drive the worker's settle step in this process against the test's real
Redis, with entries fetched by a real consumer group: what a flush leaves in
Redis is read back with plain commands.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from django_taskq import events, states
from django_taskq.broker import keys
from django_taskq.messages import Envelope
from django_taskq.metrics import counters
from django_taskq.trace import Outcome
from django_taskq.worker import streams as ops
from django_taskq.worker.settle import Settler
from tests.events.helpers import read_events

HOST = "flush@test"
TASK = "tests.testapp.tasks.add"


def _deliveries(broker: Any, n: int, queue: str = "default") -> list[ops.Delivery]:
    """``n`` entries added to ``queue`` and read by the consumer group (pending)."""
    stream = keys.stream(queue, 5)
    ops.ensure_groups(broker, [stream])
    pipe = broker.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"b": f"entry {i}"})
    pipe.execute()
    [(_, entries)] = broker.xreadgroup(keys.GROUP, "c1", {stream: ">"}, count=n)
    return [ops.Delivery(stream, entry_id.decode(), {}) for entry_id, _ in entries]


def _settle(settler: Settler, found: list[ops.Delivery]) -> list[Envelope]:
    done = []
    for i, delivery in enumerate(found):
        envelope = Envelope(id=f"task-{i}", task=TASK, args=[i, i])
        now = time.time()
        settler.finish(
            delivery, envelope, Outcome(states.SUCCESS, value=2 * i, runtime=0.001), started=now
        )
        done.append(envelope)
    settler.flush()
    return done


def _pending(broker: Any, queue: str = "default") -> int:
    return int(broker.xpending(keys.stream(queue, 5), keys.GROUP)["pending"])


def test_one_flush_acks_counts_and_records_every_message(broker: Any) -> None:
    found = _deliveries(broker, 40)
    done = _settle(Settler(HOST), found)
    assert _pending(broker) == 0 and broker.xlen(keys.stream("default", 5)) == 0
    succeeded = [e for e in read_events(broker) if e["k"] == events.SUCCEEDED]
    assert [e["id"] for e in succeeded] == [e.id for e in done]
    assert {e["w"] for e in succeeded} == {HOST}
    snapshot = counters.read(broker, ["default"])
    assert snapshot.counters[(counters.SUCCEEDED, "default", TASK, HOST)] == 40
    assert snapshot.histograms[(counters.RUNTIME, "default", TASK, HOST)].count == 40
    minute = int(time.time() // 60)
    endings = broker.hgetall(keys.throughput("default", minute)) or broker.hgetall(
        keys.throughput("default", minute - 1)
    )
    assert endings == {b"succeeded": b"40"}


def test_a_flush_of_thousands_acks_every_one(broker: Any) -> None:
    """The script acks 1,000 ids a command (Lua's unpack() has a limit)."""
    found = _deliveries(broker, 2500)
    _settle(Settler(HOST), found)
    assert _pending(broker) == 0 and broker.xlen(keys.stream("default", 5)) == 0
    assert len(read_events(broker)) == 2500


def test_counters_and_events_that_redis_refuses_never_stop_the_acks(
    broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever bytes are in Redis: a counters hash or events stream of the wrong type."""
    broker.set(keys.metrics("default"), "not a hash")
    broker.set(keys.events("default"), "not a stream")
    found = _deliveries(broker, 5)
    with caplog.at_level(logging.ERROR, logger="django_taskq.worker"):
        _settle(Settler(HOST), found)
    assert _pending(broker) == 0 and broker.xlen(keys.stream("default", 5)) == 0
    refused = [r.getMessage() for r in caplog.records if "counters or events" in r.getMessage()]
    assert refused and all("WRONGTYPE" in message for message in refused)
    assert broker.get(keys.metrics("default")) == b"not a hash"


def test_each_queue_of_a_flush_gets_its_own_acks_and_events(broker: Any) -> None:
    first, second = _deliveries(broker, 3, "alpha"), _deliveries(broker, 2, "beta")
    _settle(Settler(HOST), first + second)
    assert (_pending(broker, "alpha"), _pending(broker, "beta")) == (0, 0)
    assert len(read_events(broker, "alpha")) == 3 and len(read_events(broker, "beta")) == 2
