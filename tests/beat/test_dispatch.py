"""Sending runs: the message, its options, and exactly once per (task, due time)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from django_taskq.beat.dispatch import (
    Run,
    build_envelope,
    last_key,
    last_sent,
    run_key,
    send_now,
    send_runs,
)
from django_taskq.beat.entry import RunOptions

from .helpers import sent_messages

UTC = dt.UTC
DUE = dt.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)


def options(pk: int = 7, **kwargs) -> RunOptions:
    kwargs.setdefault("task", "tests.testapp.tasks.add")
    kwargs.setdefault("args", [1, 2])
    return RunOptions(periodic_task_id=pk, name=f"periodic-{pk}", **kwargs)


def test_run_key_is_task_and_exact_due_millisecond():
    assert run_key(7, DUE, "default") == "{taskq:default}:once:run:7:1714564800250"


def test_message_carries_name_options_and_expiry():
    opts = options(queue="reports", priority=8, headers={"team": "ops"}, expire_seconds=30)
    envelope = build_envelope(opts, DUE)
    assert (envelope.task, envelope.args, envelope.queue, envelope.priority) == (
        "tests.testapp.tasks.add",
        [1, 2],
        "reports",
        8,
    )
    assert envelope.headers == {
        "team": "ops",
        "periodic_task_name": "periodic-7",
        "periodic_task_id": 7,
        "periodic_task_due": "2024-05-01T12:00:00.250000+00:00",
    }
    assert envelope.expires == pytest.approx(DUE.timestamp() + 30)
    # expires (the periodic task's end) caps message expiry too.
    ends = DUE + dt.timedelta(seconds=10)
    assert build_envelope(options(expires=ends, expire_seconds=30), DUE).expires == pytest.approx(
        ends.timestamp()
    )


def test_a_task_unknown_here_is_routed_by_name():
    envelope = build_envelope(options(task="tests.testapp.tasks.routed_elsewhere"), DUE)
    assert envelope.queue == "routed"  # TASKQ_ROUTES in tests/settings.py
    envelope = build_envelope(options(task="only.the.workers.know"), DUE)
    assert (envelope.queue, envelope.priority) == ("default", 5)


def test_send_runs_enqueues_once_and_records_the_last_due(broker):
    runs = [Run(options(1), DUE), Run(options(2, task="x.y", args=[]), DUE)]
    outcomes = send_runs(runs)
    assert [(o.sent, o.duplicate) for o in outcomes] == [(True, False), (True, False)]
    again = send_runs(runs)
    assert [(o.sent, o.duplicate) for o in again] == [(False, True), (False, True)]
    messages = sent_messages(broker)
    assert [(m.name, m.due) for m in messages] == [
        ("periodic-1", DUE.isoformat()),
        ("periodic-2", DUE.isoformat()),
    ]
    assert last_sent(broker) == {1: DUE, 2: DUE}
    assert last_sent(broker, [2, 3]) == {2: DUE}
    ttl = broker.pttl(run_key(1, DUE, "default"))
    assert 0 < ttl <= 3600 * 1000


def test_concurrent_senders_never_duplicate_a_run(broker):
    """Two 'leaders' racing on the same 200 runs: each run is enqueued exactly once."""
    runs = [Run(options(pk, task="x.y", args=[]), DUE) for pk in range(200)]
    barrier = threading.Barrier(4)
    results: list[int] = []

    def race() -> None:
        barrier.wait()
        results.append(sum(o.sent for o in send_runs(runs)))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 200
    messages = sent_messages(broker)
    assert len(messages) == 200
    assert len({m.name for m in messages}) == 200


def test_a_run_with_bad_arguments_fails_alone(broker):
    runs = [
        Run(options(1, args=[1, 2, 3]), DUE),  # add() takes two arguments
        Run(options(2), DUE),
    ]
    outcomes = send_runs(runs)
    assert outcomes[0].error is not None and "argument" in outcomes[0].error
    assert outcomes[1].sent
    assert [m.name for m in sent_messages(broker)] == ["periodic-2"]
    assert broker.hget(last_key(), "1") is None


def test_run_now_sends_every_time_with_a_manual_header(broker):
    first = send_now(options(1, queue="q1", priority=9))
    second = send_now(options(1, queue="q1", priority=9))
    assert first.id != second.id
    messages = sent_messages(broker)
    assert len(messages) == 2
    assert {(m.queue, m.priority) for m in messages} == {("q1", 9)}
    assert messages[0].body["headers"]["periodic_task_manual"] is True
