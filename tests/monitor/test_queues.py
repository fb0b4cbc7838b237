"""Live queue state against a real Redis: ready, in flight, delayed, dead, and garbage."""

from __future__ import annotations

import time
from typing import Any

import pytest

from django_taskq import control
from django_taskq.broker import keys
from django_taskq.broker.publish import run_pipeline
from django_taskq.control import inspect
from django_taskq.monitor.display import UNREADABLE
from django_taskq.monitor.queues import PriorityStats, QueuedMessage, peek, queue_stats
from django_taskq.worker import streams as ops
from tests.testapp.tasks import add, echo


def _fetch(broker: Any, queue: str, consumer: str, count: int) -> list[ops.Delivery]:
    ops.ensure_groups(broker, keys.queue_streams(queue))
    return ops.fetch(broker, [queue], consumer, count)


def _dead_letter(broker: Any, delivery: ops.Delivery, reason: str) -> None:
    run_pipeline(broker, lambda pipe: ops.queue_dead_letter(pipe, broker, delivery, reason))


def test_a_queue_nobody_used_has_nothing(broker: Any) -> None:
    assert queue_stats() == []
    (stats,) = queue_stats(["nothing"])
    assert (stats.ready, stats.in_flight, stats.delayed, stats.dead) == (0, 0, 0, 0)
    assert stats.oldest_age is None and stats.next_eta is None
    assert stats.consumers == {} and stats.priorities == []
    assert peek("nothing") == [] and peek("nothing", delayed=True) == []


def test_ready_in_flight_delayed_and_dead_are_counted_apart(broker: Any) -> None:
    for i in range(5):
        add.apply_async((i, 1), queue="work", priority=9)
    for i in range(3):
        add.apply_async((i, 2), queue="work", priority=2)
    soon = time.time() + 3600
    add.apply_async((7, 7), queue="work", eta=soon)
    add.apply_async((8, 8), queue="work", countdown=7200)
    held_a = _fetch(broker, "work", "host:1:aa:0", 2)  # two of priority 9
    held_b = _fetch(broker, "work", "host:1:aa:1", 4)  # three of 9, one of 2
    _dead_letter(broker, held_b[-1], "test: dead")

    (stats,) = queue_stats()
    assert stats.name == "work"
    assert stats.ready == 2  # two of priority 2 nobody fetched
    assert stats.in_flight == 5  # 2 + 3 (the dead-lettered one was acked)
    assert stats.delayed == 2
    assert stats.dead == 1
    assert stats.consumers == {"host:1:aa:0": 2, "host:1:aa:1": 3}
    assert stats.priorities == [PriorityStats(9, 0, 5), PriorityStats(2, 2, 0)]
    assert stats.next_eta == pytest.approx(soon, abs=0.002)
    assert stats.oldest_age is not None and 0 <= stats.oldest_age < 60
    assert len(held_a) == 2

    ready = peek("work")
    assert [(m.task, m.args, m.priority) for m in ready] == [
        ("tests.testapp.tasks.add", "[1, 2]", 2),
        ("tests.testapp.tasks.add", "[2, 2]", 2),
    ]
    assert all(m.entry_id and m.eta is None and m.kwargs == "{}" for m in ready)
    delayed = peek("work", delayed=True)
    assert [(m.args, m.eta is not None and round(m.eta)) for m in delayed] == [
        ("[7, 7]", round(soon)),
        ("[8, 8]", round(delayed[1].eta or 0)),
    ]
    assert delayed[0].eta is not None and delayed[1].eta is not None
    assert delayed[0].eta < delayed[1].eta
    assert all(m.entry_id is None and m.priority == 5 for m in delayed)


def test_peek_lists_priority_nine_first_and_stops_at_the_limit(broker: Any) -> None:
    sent = [echo.apply_async((f"low{i}",), priority=1) for i in range(3)]
    sent += [echo.apply_async((f"high{i}",), priority=9) for i in range(3)]
    shown = peek("default", limit=4)
    assert [m.args for m in shown] == ["['high0']", "['high1']", "['high2']", "['low0']"]
    assert shown[0].task_id == sent[3].id
    assert [m.args for m in peek("default", limit=2, delayed=False)] == ["['high0']", "['high1']"]
    assert peek("default", limit=0) == []


def test_the_oldest_age_is_the_first_ready_message_s(broker: Any) -> None:
    """Measured on the Redis clock from the first entry no consumer has fetched."""
    echo.delay("first")
    echo.delay("second")
    entry = broker.xrange(keys.stream("default", 5))[0][0].decode()
    _fetch(broker, "default", "host:1:aa:0", 1)  # "first" is now in flight
    server_ms = int(broker.time()[0]) * 1000 + int(broker.time()[1]) // 1000
    second_ms = int(broker.xrange(keys.stream("default", 5))[1][0].decode().split("-")[0])
    (stats,) = queue_stats(["default"])
    assert stats.ready == 1 and stats.in_flight == 1
    assert stats.oldest_age is not None
    assert stats.oldest_age == pytest.approx((server_ms - second_ms) / 1000, abs=0.5)
    assert peek("default")[0].args == "['second']"
    assert entry != peek("default")[0].entry_id


def test_a_stream_without_a_group_counts_every_entry_ready(broker: Any) -> None:
    """A queue no worker has consumed yet: every message is ready."""
    echo.apply_async(("x",), queue="fresh")
    echo.apply_async(("y",), queue="fresh")
    (stats,) = queue_stats(["fresh"])
    assert (stats.ready, stats.in_flight) == (2, 0)
    assert [m.args for m in peek("fresh")] == ["['x']", "['y']"]


def test_garbage_in_redis_is_shown_as_unreadable_never_raised(broker: Any) -> None:
    queue = "junk"
    broker.sadd(keys.queues(), queue)
    stream = keys.stream(queue, 5)
    broker.xadd(stream, {"i": "id-1", "b": b"\xff\xfe not utf-8", "dc": "0"})
    broker.xadd(stream, {"i": "id-2", "b": "[1, 2]", "dc": "0"})
    broker.xadd(stream, {"i": "id-3", "b": '{"task": 5}', "dc": "0"})
    broker.xadd(stream, {"nothing": "useful"})
    broker.xadd(stream, {"i": "id-5", "b": "[" * 100_000, "dc": "0"})
    broker.xadd(stream, {"i": "id-6", "b": '{"task": "t", "args": {"__taskq__": "nope"}}'})
    broker.xadd(stream, {"i": "id-7", "b": "p:gASVAAAA", "dc": "0"})
    big = '{"id": "id-8", "task": "big.task", "args": ["' + "x" * (2 << 20) + '"]}'
    broker.xadd(stream, {"i": "id-8", "b": big, "dc": "0"})
    broker.zadd(keys.delayed(queue), {b"no newlines at all": 1, b"12\nid\n{}": 2})
    broker.set(keys.stream(queue, 9), "a string where a stream should be")
    broker.set(keys.dead(queue), "not a stream either")

    (stats,) = queue_stats([queue])
    assert (stats.ready, stats.in_flight, stats.delayed, stats.dead) == (8, 0, 2, 0)

    listed = peek(queue)
    not_a_stream = listed[0]  # priority 9 comes first
    assert not_a_stream.task == UNREADABLE and "not a stream" in not_a_stream.args
    assert not_a_stream.priority == 9 and not_a_stream.entry_id is None
    shown = {m.task_id: m for m in listed[1:]}
    assert shown["id-1"].task == UNREADABLE and "not JSON" in shown["id-1"].args
    assert shown["id-2"].task == UNREADABLE and "JSON list" in shown["id-2"].args
    assert shown["id-3"].task == UNREADABLE and "no task" in shown["id-3"].args
    assert shown["id-5"].task == UNREADABLE
    assert shown["id-6"].task == "t" and "nope" in shown["id-6"].args
    assert shown["id-7"].task == "(pickled)"
    assert shown["id-8"].task == "big.task" and "bytes of body" in shown["id-8"].args
    no_fields = [m for m in shown.values() if m.task_id not in {f"id-{i}" for i in range(9)}]
    assert len(no_fields) == 1 and no_fields[0].task == UNREADABLE
    assert "no body" in no_fields[0].args

    delayed = peek(queue, delayed=True)
    assert [m.task for m in delayed] == [UNREADABLE, UNREADABLE]
    assert [m.eta for m in delayed] == [0.001, 0.002]


def test_arguments_are_shown_short_however_large(broker: Any) -> None:
    echo.delay({"key": "v" * 10_000, "list": list(range(1000))})
    (message,) = peek("default")
    assert len(message.args) <= 500
    assert message.args.startswith("[{'key': 'vvvv")


def test_an_unknown_queue_name_is_refused_with_its_reason() -> None:
    with pytest.raises(ValueError, match="peek"):
        peek("bad name")
    with pytest.raises(ValueError, match="queue_stats"):
        queue_stats(["{tag}"])


def test_a_hundred_queues_are_read_in_one_round_trip(broker: Any) -> None:
    names = [f"q{i:03}" for i in range(100)]
    for name in names:
        echo.apply_async((name,), queue=name)
    started = time.perf_counter()
    stats = queue_stats()
    elapsed = time.perf_counter() - started
    assert [s.name for s in stats] == names
    assert all(s.ready == 1 for s in stats)
    assert elapsed < 1.0, elapsed  # about 10 ms on a laptop


def test_inspect_reports_the_same_numbers(broker: Any) -> None:
    for i in range(3):
        add.apply_async((i, i), queue="work")
    add.apply_async((1, 1), queue="work", countdown=600)
    _fetch(broker, "work", "host:1:aa:0", 1)
    report = inspect()
    counts = {"waiting": 2, "running": 1, "delayed": 1, "dead": 0}
    assert report["queues"]["work"] == counts
    assert control.queue_stats(broker, "work") == counts  # taskq_purge's
    assert report["delayed"] == 1 and report["dead_letters"] == 0


def test_queued_messages_are_values() -> None:
    message = QueuedMessage("i", "t", "[]", "{}", 5, None, "1-0")
    with pytest.raises(AttributeError):
        message.task = "other"  # type: ignore[misc]


def test_counts_survive_redis_losing_its_scripts(broker: Any) -> None:
    echo.delay("x")
    assert queue_stats()[0].ready == 1
    broker.script_flush()
    assert queue_stats()[0].ready == 1
