"""Bursts sent ahead, end to end: real ``taskq_beat`` (and worker) subprocesses, real Redis.

Every test creates periodic tasks that are all due at one instant T a few
seconds ahead, with TASKQ_BEAT_SEND_AHEAD longer than it takes a beat to
load them, and waits until the leader has queued the burst ahead (the
delayed set holds it) before it changes something: a leader handover, edits
and disables, a leader killed. Then it waits for the runs to come out and
checks that each run came out exactly once, and nothing for a disabled or
deleted task. Waits are on Redis state or beat's output, with deadlines; no
test asserts a duration (the figures are in docs/benchmarks-beat.md).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter

import pytest
import redis

from django_taskq.beat.dispatch import last_sent, run_key
from django_taskq.beat.entry import epoch_ms
from django_taskq.models import IntervalSchedule, PeriodicTask

from .helpers import (
    BeatProcess,
    leader_pid,
    queued_ahead,
    sent_messages,
    started_runs,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEADS = "is now the leader"
#: Beats of these tests: a short lease, and a horizon that leaves a slow
#: machine seconds to load and queue the burst before it is due.
BEAT_ENV = {"TASKQ_TEST_LEASE": "3", "TASKQ_TEST_SEND_AHEAD": "6"}
STAMPS = "burst:started"


def burst(names: list[str], every: int, due_in: float, **task) -> dt.datetime:
    """Periodic tasks all due at one whole second ``due_in`` seconds from now; returns it."""
    due = dt.datetime.fromtimestamp(math.ceil(time.time() + due_in), dt.UTC)
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period="seconds")
    task.setdefault("task", "tests.testapp.tasks.stamp")
    task.setdefault("args", [STAMPS])
    PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(
                name=name, interval=interval, last_run_at=due - dt.timedelta(seconds=every), **task
            )
            for name in names
        ]
    )
    return due


def leader(broker: redis.Redis, beats: list[BeatProcess]) -> BeatProcess:
    def find() -> BeatProcess | None:
        pid = leader_pid(broker)
        return next((b for b in beats if b.pid == pid), None)

    return wait_until(find, 30, "a beat leads")


def queued_for(broker: redis.Redis, due: dt.datetime) -> set[str]:
    return {q.name for q in queued_ahead(broker) if q.due == due.isoformat() and q.name}


def sent_for(broker: redis.Redis, due: dt.datetime) -> list[str]:
    return [m.name for m in sent_messages(broker) if m.due == due.isoformat() and m.name]


def test_a_burst_queued_ahead_is_sent_once_across_a_leader_handover(broker, beat_process):
    beats = [beat_process(name, **BEAT_ENV) for name in ("burst-a", "burst-b")]
    first = leader(broker, beats)
    first.wait_for("loaded 0 periodic tasks")
    names = [f"burst-{i:03d}" for i in range(300)]
    due = burst(names, every=3600, due_in=10)
    wait_until(lambda: len(queued_for(broker, due)) == len(names), 30, "the burst is queued ahead")
    assert sent_for(broker, due) == []  # nothing fetchable before its due time

    # A clean handover while the burst waits: the successor finds every run
    # queued already (their once keys) and adopts them instead of sending again.
    assert first.terminate() == 0
    second = next(b for b in beats if b is not first)
    second.wait_for(LEADS)

    wait_until(lambda: len(sent_for(broker, due)) >= len(names), 30, "the burst is promoted")
    messages = [m for m in sent_messages(broker) if m.due == due.isoformat()]
    assert Counter(m.name for m in messages) == Counter(names)  # each run exactly once
    assert min(m.added_ms for m in messages) >= epoch_ms(due)  # none early
    assert len({m.body["id"] for m in messages}) == len(names)
    assert queued_for(broker, due) == set()
    ids = list(PeriodicTask.objects.filter(name__in=names).values_list("pk", flat=True))
    wait_until(
        lambda: set(last_sent(broker, ids).values()) == {due}, 15, "the runs are recorded as sent"
    )
    assert "already sent (by another beat, or before a leader change)" in second.output


def test_edits_disables_and_deletes_inside_the_horizon_take_back_runs_sent_ahead(
    broker, beat_process
):
    beat = beat_process("burst-changes", **BEAT_ENV)
    beat.wait_for("loaded 0 periodic tasks")
    names = ["keep", "edit", "disable", "delete"]
    due = burst(names, every=3600, due_in=10)
    wait_until(lambda: queued_for(broker, due) == set(names), 30, "the runs are queued ahead")

    edited = PeriodicTask.objects.get(name="edit")
    edited.args = [f"{STAMPS}:edited"]
    edited.save()
    disabled = PeriodicTask.objects.get(name="disable")
    disabled.enabled = False
    disabled.save()
    deleted = PeriodicTask.objects.get(name="delete")
    deleted_pk = deleted.pk
    deleted.delete()

    # All three runs are taken back; the edited one is queued again as it is now.
    wait_until(
        lambda: beat.output.count("took back the run due at") >= 3, 15, "three runs taken back"
    )
    wait_until(lambda: queued_for(broker, due) == {"keep", "edit"}, 15, "the edit is re-queued:")
    wait_until(lambda: len(sent_for(broker, due)) >= 2, 30, "the runs are promoted when due")
    assert sorted(sent_for(broker, due)) == ["edit", "keep"]
    [sent_edit] = [m for m in sent_messages(broker) if m.name == "edit"]
    assert sent_edit.body["args"] == [f"{STAMPS}:edited"]
    assert queued_for(broker, due) == set()
    assert not broker.exists(run_key(disabled.pk, due, "default"))
    assert not broker.exists(run_key(deleted_pk, due, "default"))
    wait_until(
        lambda: PeriodicTask.objects.get(name="edit").total_run_count == 1,
        15,
        "the edited run is written back",
    )
    disabled.refresh_from_db()
    assert disabled.total_run_count == 0
    assert disabled.last_run_at == due - dt.timedelta(seconds=3600)


def test_a_leader_killed_inside_the_horizon_neither_loses_nor_doubles_a_run(
    broker, beat_process, start_worker
):
    start_worker("-Q", "default", "-P", "solo")
    beats = [beat_process(name, **BEAT_ENV) for name in ("kill-a", "kill-b")]
    first = leader(broker, beats)
    first.wait_for("loaded 0 periodic tasks")
    names = [f"kill-{i:03d}" for i in range(100)]
    every = 12
    due = burst(names, every=every, due_in=10)
    following = due + dt.timedelta(seconds=every)
    wait_until(lambda: len(queued_for(broker, due)) == len(names), 30, "the burst is queued ahead")

    first.kill()  # SIGKILL: no flush, no lease release; the queued burst stays queued
    second = next(b for b in beats if b is not first)
    second.wait_for(LEADS, timeout=30)

    # The worker promotes the dead leader's burst when due; the new leader
    # adopts it (its once keys) and queues the next burst itself.
    expected = Counter({(name, d.isoformat()): 1 for name in names for d in (due, following)})
    wait_until(
        lambda: len(started_runs(broker, STAMPS)) >= len(expected),
        60,
        "both bursts run on the worker",
    )
    started = Counter((run.name, run.due) for run in started_runs(broker, STAMPS))
    assert started == expected  # every run of both bursts, each exactly once
