"""A bulk send (``delay_many``, ``apply_many``, groups) is one ``enqueue_many.lua`` call per batch.

Each message is queued once (its once key), gets its PENDING record, its
``sent`` event and its count, as ``delay()`` gives it; a batch sent again
after a lost reply queues nothing twice and counts nothing twice; a batch
that brings a queue's earliest ETA wakes the housekeepers. Run on the
session's Redis, and on a Cluster and a Sentinel master.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.publish import publish_many
from django_taskq.metrics import counters
from tests.events.helpers import read_events
from tests.testapp.tasks import add

ADD = add.name


def _sent(queue: str) -> int:
    snapshot = counters.read(get_broker(), [queue])
    return sum(
        n
        for (kind, q, _name, _worker), n in snapshot.counters.items()
        if kind == counters.SENT and q == queue
    )


def _check_bulk_send() -> None:
    client = get_broker()
    now_ready = [add.build_envelope((i, i), queue="bulk-a") for i in range(300)]
    later = [add.build_envelope((i, i), queue="bulk-b", countdown=60) for i in range(300)]
    ignored = [add.build_envelope((i, i), queue="bulk-a", ignore_result=True) for i in range(5)]
    batch = now_ready + later + ignored
    assert publish_many(batch) == len(batch)

    assert (
        client.xlen(keys.stream("bulk-a", 0))
        + sum(client.xlen(keys.stream("bulk-a", p)) for p in range(1, 10))
        == 305
    )
    assert client.zcard(keys.delayed("bulk-b")) == 300
    for envelope in now_ready + later:
        record = client.get(keys.result(envelope.id))
        assert record is not None and b'"PENDING"' in record
    assert client.pttl(keys.result(later[0].id)) > 60_000  # kept past the ETA
    assert not any(client.exists(keys.result(e.id)) for e in ignored)
    sent_a = [e["id"] for e in read_events(client, "bulk-a") if e["k"] == "sent"]
    sent_b = [e["id"] for e in read_events(client, "bulk-b") if e["k"] == "sent"]
    assert sorted(sent_a) == sorted(e.id for e in now_ready + ignored)
    assert sorted(sent_b) == sorted(e.id for e in later)
    assert (_sent("bulk-a"), _sent("bulk-b")) == (305, 300)

    # Sent again, as after a lost reply: nothing is queued, counted or told twice.
    assert publish_many(batch) == 0
    assert client.zcard(keys.delayed("bulk-b")) == 300
    assert (_sent("bulk-a"), _sent("bulk-b")) == (305, 300)
    assert len([e for e in read_events(client, "bulk-a") if e["k"] == "sent"]) == 305


def test_a_bulk_send_queues_records_tells_and_counts_each_message_once() -> None:
    _check_bulk_send()


def test_a_bulk_send_on_cluster_and_sentinel(topology: Any) -> None:
    _check_bulk_send()


def test_a_record_a_worker_stored_is_left_alone() -> None:
    client = get_broker()
    envelope = add.build_envelope((1, 2), countdown=60)
    client.set(keys.result(envelope.id), b'{"status":"SUCCESS"}')
    assert publish_many([envelope]) == 1
    assert client.get(keys.result(envelope.id)) == b'{"status":"SUCCESS"}'


def test_a_batch_bringing_the_earliest_eta_wakes_the_housekeepers() -> None:
    client = get_broker()
    add.apply_async((0, 0), countdown=300)
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(keys.delayed_wake())
    try:
        listener.get_message(timeout=1.0)  # the subscription's confirmation
        # Later than what waits already: no wake-up.
        publish_many([add.build_envelope((1, 1), countdown=600)])
        # Sooner: one wake-up, naming the queue.
        publish_many([add.build_envelope((i, i), countdown=30 + i) for i in range(3)])
        client.publish(keys.delayed_wake(), "end")  # told after what was sent before it
        told = []
        while not told or told[-1] != b"end":
            message = listener.get_message(timeout=5.0)
            assert message is not None, told
            told.append(message["data"])
        assert told == [b"default", b"end"]
    finally:
        listener.close()


@pytest.mark.parametrize("size", [1, 256, 257, 700])
def test_batches_of_any_size(size: int) -> None:
    results = add.delay_many([(i, i) for i in range(size)])
    assert len({r.id for r in results}) == size
    assert all(r.state == states.PENDING for r in results[:: max(1, size // 10)])
    client = get_broker()
    assert (
        client.xlen(keys.stream("default", add.priority or 0))
        + sum(
            client.xlen(keys.stream("default", p)) for p in range(1, 10) if p != (add.priority or 0)
        )
        == size
    )


def test_a_bad_argument_sends_nothing_and_is_named() -> None:
    from django_taskq.exceptions import EncodeError

    with pytest.raises(EncodeError, match="add"):
        add.delay_many([(1, 1), (2, object())])
    assert get_broker().xlen(keys.stream("default", add.priority or 0)) == 0
