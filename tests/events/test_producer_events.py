"""What a producer writes in the publishing step: the ``sent`` event and counter."""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

import pytest

from django_taskq import events
from django_taskq.beat.dispatch import Run, eta_of, send_runs
from django_taskq.beat.entry import RunOptions
from django_taskq.broker import keys
from django_taskq.metrics import counters
from tests.events.helpers import has, of, one, read_events, wait_for
from tests.testapp.tasks import add

ADD = "tests.testapp.tasks.add"


def test_a_send_writes_one_event_and_one_count(broker: Any) -> None:
    result = add.apply_async((1, 2), {}, headers={"retry_of": "first-id"}, priority=7)
    sent = one(read_events(broker), result.id, events.SENT)
    assert (sent["n"], sent["a"], sent["kw"], sent["pr"], sent["rof"]) == (
        ADD,
        "[1, 2]",
        "{}",
        7,
        "first-id",
    )
    assert "eta" not in sent and "w" not in sent
    assert events.decode(sent["body"]) == [] and f'"id":"{result.id}"' in sent["body"]
    snapshot = counters.read(broker, ["default"])
    assert snapshot.counters[(counters.SENT, "default", ADD, "")] == 1


def test_a_long_or_pickled_body_is_left_out(broker: Any, settings: Any) -> None:
    settings.TASKQ_HISTORY_BODY_LIMIT = 50
    long = add.delay(1, 2)
    settings.TASKQ_HISTORY_BODY_LIMIT = 16384
    pickled = add.apply_async((1, 2), serializer="pickle")
    found = read_events(broker)
    assert "body" not in one(found, long.id, events.SENT)
    assert "body" not in one(found, pickled.id, events.SENT)


@pytest.mark.parametrize("serializer, compression", [("msgpack", None), ("json", "zlib")])
def test_a_msgpack_or_compressed_body_is_kept_as_text_that_gives_it_back(
    broker: Any, settings: Any, serializer: str, compression: str | None
) -> None:
    import base64

    settings.TASKQ_COMPRESSION_MIN_SIZE = 0
    result = add.apply_async((1, 2), serializer=serializer, compression=compression)
    sent = one(read_events(broker), result.id, events.SENT)
    [(_, fields)] = broker.xrange(keys.stream("default", 5))
    assert sent["body"] == "base64:" + base64.b64encode(fields[b"b"]).decode()


def test_a_compressed_pickled_body_is_left_out(broker: Any, settings: Any) -> None:
    settings.TASKQ_COMPRESSION_MIN_SIZE = 0
    result = add.apply_async((1, 2), serializer="pickle", compression="zlib")
    [(_, fields)] = broker.xrange(keys.stream("default", 5))
    assert fields[b"b"].startswith(b"pickle+zlib:")
    assert "body" not in one(read_events(broker), result.id, events.SENT)


def test_a_periodic_send_names_its_periodic_task_and_a_duplicate_writes_nothing(
    broker: Any,
) -> None:
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    run = Run(RunOptions(periodic_task_id=3, name="nightly", task=ADD, args=[1, 1]), due)
    assert [o.sent for o in send_runs([run])] == [True]
    assert [o.sent for o in send_runs([run])] == [False]  # a duplicate: no event, no count
    [sent] = read_events(broker)
    assert sent["k"] == events.SENT and sent["per"] == "nightly"
    assert sent["eta"] == eta_of(due)
    # The delayed message is due at exactly the run's millisecond (rounded up, not past it).
    [(_, score)] = broker.zrange(keys.delayed("default"), 0, -1, withscores=True)
    assert int(score) == math.floor(due.timestamp() * 1000)
    snapshot = counters.read(broker, ["default"])
    assert snapshot.counters[(counters.SENT, "default", ADD, "")] == 1


def test_an_eta_between_milliseconds_is_rounded_up(broker: Any) -> None:
    eta = math.floor(time.time() + 3600) + 0.0004  # 0.4 ms past a whole second
    add.apply_async((1, 1), eta=eta)
    [(_, score)] = broker.zrange(keys.delayed("default"), 0, -1, withscores=True)
    assert int(score) == math.floor(eta) * 1000 + 1


def test_events_off_writes_no_event_and_metrics_off_no_count(broker: Any, settings: Any) -> None:
    settings.TASKQ_EVENTS = False
    add.delay(1, 1)
    assert not broker.exists(keys.events("default"))
    assert counters.read(broker, ["default"]).counters[(counters.SENT, "default", ADD, "")] == 1
    settings.TASKQ_METRICS = False
    add.delay(1, 1)
    assert counters.read(broker, ["default"]).counters[(counters.SENT, "default", ADD, "")] == 1


def test_the_stream_is_capped(broker: Any, settings: Any) -> None:
    settings.TASKQ_EVENTS_MAXLEN = 50
    for i in range(400):  # an entry each (a bulk send joins its events into entries of 128)
        add.delay(i, i)
    # MAXLEN ~ trims whole nodes of the stream (100 entries each by default).
    assert 50 <= broker.xlen(keys.events("default")) <= 150


def test_a_large_batch_is_split_into_entries_of_at_most_128_events(broker: Any) -> None:
    batch = [{"k": events.SUCCEEDED, "id": f"t{i}", "n": ADD, "ts": i} for i in range(300)]
    pipe = broker.pipeline(transaction=False)
    events.queue_xadd(pipe, keys.events("default"), batch, worker="w1")
    pipe.execute()
    entries = broker.xrange(keys.events("default"))
    assert [len(events.decode_entry(fields)) for _, fields in entries] == [128, 128, 44]
    assert [e["id"] for _, f in entries for e in events.decode_entry(f)] == [
        f"t{i}" for i in range(300)
    ]


def test_event_and_counter_keys_are_in_the_queue_s_slot() -> None:
    from redis.crc import key_slot

    for queue in ("default", "reports", "a{b}c"):
        slot = key_slot(keys.stream(queue, 5).encode())
        assert key_slot(keys.events(queue).encode()) == slot
        assert key_slot(keys.metrics(queue).encode()) == slot


@pytest.mark.e2e
def test_events_on_a_redis_cluster(on_cluster: Any, start_worker: Any) -> None:
    from django_taskq.broker.connection import get_broker

    client = get_broker()
    start_worker("-P", "solo", "-Q", "default,reports", "-n", "taskq@cluster-events")
    results = [add.apply_async((i, i), queue=q) for i in range(3) for q in ("default", "reports")]
    assert [r.get(timeout=20) for r in results] == [2 * i for i in range(3) for _ in (0, 1)]
    for queue in ("default", "reports"):
        mine = [r for r in results if of(read_events(client, queue), r.id, events.SENT)]
        assert len(mine) == 3
        wait_for(client, lambda f, m=mine: all(has(r.id, events.SUCCEEDED)(f) for r in m), queue)
        snapshot = counters.read(client, [queue])
        key = (counters.SUCCEEDED, queue, ADD, "taskq@cluster-events")
        assert snapshot.counters[key] == 3


def test_a_run_withdrawn_by_beat_is_revoked(broker: Any) -> None:
    from django_taskq.beat import sendahead
    from django_taskq.beat.ahead import AheadRun
    from django_taskq.beat.entry import from_epoch_ms

    due = from_epoch_ms(int((time.time() + 30) * 1000))
    runs = [
        Run(RunOptions(periodic_task_id=pk, name=f"p{pk}", task=ADD, args=[1, 2]), due)
        for pk in (1, 2)
    ]
    outcomes = send_runs(runs)
    taken = [
        AheadRun(pk, due, "default", o.task_id) for pk, o in zip((1, 2), outcomes, strict=True)
    ]
    assert sendahead.withdraw(broker, taken[:1] * 2) == [True, False]
    found = read_events(broker)
    gone = one(found, outcomes[0].task_id, events.REVOKED)
    assert gone["n"] == ADD and gone["msg"].startswith("withdrawn before its due time")
    assert isinstance(gone["ts"], int) and abs(gone["ts"] / 1000 - time.time()) < 60
    assert not [e for e in found if e["id"] == outcomes[1].task_id and e["k"] != events.SENT]
