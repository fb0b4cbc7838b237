"""The heap scheduler and the due-time rules, with a fake clock (no Redis, no DB)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from django_taskq.beat.dispatch import Outcome, Run
from django_taskq.beat.entry import Entry, RunOptions
from django_taskq.beat.scheduler import Scheduler
from django_taskq.schedules import BaseSchedule, clocked, crontab, schedule

UTC = dt.UTC
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
S = dt.timedelta(seconds=1)


def entry(pk: int, sched: BaseSchedule, **kwargs) -> Entry:
    kind = {schedule: "interval", crontab: "crontab", clocked: "clocked"}[type(sched)]
    kwargs.setdefault("anchor", T0)
    return Entry(
        id=pk,
        options=RunOptions(periodic_task_id=pk, name=f"task-{pk}", task="app.tasks.t"),
        schedule=sched,
        kind=kind,
        fingerprint=(pk, repr(sched), tuple(sorted(kwargs.items()))),
        **kwargs,
    )


def sent(runs: list[Run], *, duplicate: bool = False) -> list[Outcome]:
    return [Outcome(run=r, sent=not duplicate, duplicate=duplicate) for r in runs]


def loaded(*entries: Entry) -> Scheduler:
    scheduler = Scheduler()
    scheduler.replace_all(list(entries), {})
    return scheduler


def test_interval_never_run_starts_one_interval_after_it_was_saved():
    scheduler = loaded(entry(1, schedule(10)))
    assert scheduler.next_due() == T0 + 10 * S


def test_interval_does_not_drift_when_sent_late():
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 10.4 * S)  # sent 400 ms late
    assert [r.due for r in runs] == [T0 + 10 * S]
    scheduler.sent(sent(runs))
    assert scheduler.next_due() == T0 + 20 * S  # the grid, not 10.4 s + 10 s
    assert scheduler.pending[1].last_run_at == T0 + 10 * S
    assert scheduler.pending[1].runs == 1


def test_interval_survives_a_restart_without_resetting_its_countdown():
    # A new beat process loads last_run_at (the due time of the last run sent).
    scheduler = loaded(entry(1, schedule(3600), last_run_at=T0 + 600 * S, anchor=T0 + 5 * S))
    assert scheduler.next_due() == T0 + 4200 * S


def test_interval_takes_the_later_of_database_and_redis_last_sent():
    scheduler = Scheduler()
    scheduler.replace_all([entry(1, schedule(10), last_run_at=T0)], {1: T0 + 30 * S})
    assert scheduler.next_due() == T0 + 40 * S


def test_start_time_is_the_first_run_and_the_grid_origin():
    scheduler = loaded(entry(1, schedule(60), start_time=T0 + 3600 * S))
    assert scheduler.pop_due(T0 + 3599 * S) == []
    runs = scheduler.pop_due(T0 + 3600 * S)
    assert [r.due for r in runs] == [T0 + 3600 * S]
    scheduler.sent(sent(runs))
    assert scheduler.next_due() == T0 + 3660 * S


def test_crontab_never_runs_before_start_time():
    cron = crontab(minute="*/10", tz="UTC")
    scheduler = loaded(entry(1, cron, start_time=T0 + 25 * 60 * S))
    assert scheduler.next_due() == T0 + 30 * 60 * S


def test_missed_runs_are_sent_once_keyed_by_the_latest_due_time(caplog):
    scheduler = loaded(entry(1, schedule(10), last_run_at=T0))
    with caplog.at_level(logging.INFO, logger="django_taskq.beat"):
        runs = scheduler.pop_due(T0 + 95 * S)
    assert [r.due for r in runs] == [T0 + 90 * S]
    assert "were missed; sending one" in caplog.text
    scheduler.sent(sent(runs))
    assert scheduler.next_due() == T0 + 100 * S


def test_missed_crontab_runs_are_sent_once():
    cron = crontab(minute="0", hour="*", tz="Europe/Berlin")
    scheduler = loaded(entry(1, cron, last_run_at=T0))
    runs = scheduler.pop_due(T0 + dt.timedelta(hours=5, minutes=20))
    assert [r.due for r in runs] == [T0 + dt.timedelta(hours=5)]


def test_max_staleness_skips_a_catch_up_run_that_is_too_late(caplog):
    scheduler = loaded(entry(1, schedule(3600), last_run_at=T0, max_staleness=60))
    now = T0 + dt.timedelta(hours=3, minutes=20)
    with caplog.at_level(logging.WARNING, logger="django_taskq.beat"):
        assert scheduler.pop_due(now) == []
    assert "skipped the run due at" in caplog.text and "max_staleness" in caplog.text
    assert scheduler.next_due() == T0 + dt.timedelta(hours=4)
    # A run only slightly late is still sent.
    runs = scheduler.pop_due(T0 + dt.timedelta(hours=4, seconds=30))
    assert [r.due for r in runs] == [T0 + dt.timedelta(hours=4)]


def test_no_run_at_or_after_expires():
    scheduler = loaded(entry(1, schedule(10), expires=T0 + 25 * S))
    for expected in (T0 + 10 * S, T0 + 20 * S):
        runs = scheduler.pop_due(expected)
        assert [r.due for r in runs] == [expected]
        scheduler.sent(sent(runs))
    assert scheduler.next_due() is None
    assert 1 not in scheduler.entries


def test_catch_up_after_expiry_sends_the_last_run_before_expires():
    scheduler = loaded(entry(1, schedule(10), last_run_at=T0, expires=T0 + 45 * S))
    runs = scheduler.pop_due(T0 + 500 * S)
    assert [r.due for r in runs] == [T0 + 40 * S]


def test_one_off_runs_once_and_is_disabled():
    scheduler = loaded(entry(1, schedule(10), one_off=True))
    runs = scheduler.pop_due(T0 + 10 * S)
    scheduler.sent(sent(runs))
    assert scheduler.next_due() is None
    assert scheduler.pending[1].disable is True


def test_clocked_runs_once_at_its_time_even_if_beat_was_down():
    at = T0 + 30 * S
    scheduler = loaded(entry(1, clocked(at)))
    assert scheduler.next_due() == at
    runs = scheduler.pop_due(T0 + 3600 * S)  # beat was down: still sent, once
    assert [r.due for r in runs] == [at]
    scheduler.sent(sent(runs))
    assert scheduler.next_due() is None
    # Reloading the row after its run (last_run_at == clocked time) schedules nothing.
    again = loaded(entry(1, clocked(at), last_run_at=at))
    assert again.next_due() is None


def test_a_duplicate_moves_on_but_does_not_count_as_our_run():
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 10 * S)
    scheduler.sent(sent(runs, duplicate=True))
    assert scheduler.pending[1].last_run_at == T0 + 10 * S
    assert scheduler.pending[1].runs == 0
    assert scheduler.next_due() == T0 + 20 * S


def test_a_run_that_cannot_be_built_is_logged_and_skipped(caplog):
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 10 * S)
    with caplog.at_level(logging.ERROR, logger="django_taskq.beat"):
        scheduler.sent([Outcome(run=runs[0], error="TypeError: bad args")])
    assert "could not send the run" in caplog.text and "bad args" in caplog.text
    assert scheduler.next_due() == T0 + 20 * S


def test_unsent_runs_stay_due():
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 10 * S)
    scheduler.unsent(runs)
    assert scheduler.next_due() == T0 + 10 * S
    assert [r.due for r in scheduler.pop_due(T0 + 31 * S)] == [T0 + 30 * S]


def test_heap_pops_in_due_order_and_sleeps_until_the_next():
    every = schedule(100)
    scheduler = loaded(
        entry(1, every, anchor=T0 - 70 * S),  # due T0+30
        entry(2, every, anchor=T0 - 90 * S),  # due T0+10
        entry(3, every, anchor=T0 - 80 * S),  # due T0+20
        entry(4, schedule(3600)),
    )
    assert scheduler.seconds_until_next(T0) == pytest.approx(10)
    runs = scheduler.pop_due(T0 + 30 * S)
    assert [(r.options.periodic_task_id, r.due) for r in runs] == [
        (2, T0 + 10 * S),
        (3, T0 + 20 * S),
        (1, T0 + 30 * S),
    ]
    scheduler.sent(sent(runs))
    assert scheduler.seconds_until_next(T0 + 30 * S) == pytest.approx(80)  # task 2 at T0+110


def test_pop_due_limits_one_batch():
    scheduler = loaded(*[entry(i, schedule(10)) for i in range(1, 1201)])
    first = scheduler.pop_due(T0 + 10 * S, limit=500)
    assert len(first) == 500
    assert len(scheduler.pop_due(T0 + 10 * S, limit=500)) == 500
    assert len(scheduler.pop_due(T0 + 10 * S, limit=500)) == 200


def test_reload_keeps_unchanged_entries_and_recomputes_changed_ones():
    a, b = entry(1, schedule(10)), entry(2, schedule(10))
    scheduler = loaded(a, b)
    runs = scheduler.pop_due(T0 + 10 * S)
    scheduler.sent(sent(runs))
    # Same rows again (the database does not have last_run_at yet): state kept.
    assert scheduler.replace_all([entry(1, schedule(10)), entry(2, schedule(10))], {}) == 0
    assert scheduler.next_due() == T0 + 20 * S
    # Task 2 now every 60 s: recomputed from its last run, which memory knows.
    changed = scheduler.replace_all([entry(1, schedule(10)), entry(2, schedule(60))], {})
    assert changed == 1
    assert scheduler.entries[2].next_due == T0 + 70 * S
    # Task 1 removed (deleted or disabled): gone from the heap.
    scheduler.replace_all([entry(2, schedule(60))], {})
    assert [r.options.periodic_task_id for r in scheduler.pop_due(T0 + 100 * S)] == [2]


def test_repeated_edits_do_not_grow_the_heap_without_bound():
    scheduler = loaded(*[entry(i, schedule(86400)) for i in range(1, 101)])
    for round_ in range(100):
        scheduler.replace_all([entry(i, schedule(86400 + round_ + 1)) for i in range(1, 101)], {})
    assert len(scheduler.heap) <= 2 * 100 + 1000
    assert len(scheduler.pop_due(T0 + dt.timedelta(days=2))) == 100


def test_failed_write_back_is_merged_with_newer_writes():
    scheduler = loaded(entry(1, schedule(10)))
    scheduler.sent(sent(scheduler.pop_due(T0 + 10 * S)))
    failed = scheduler.take_pending()
    scheduler.sent(sent(scheduler.pop_due(T0 + 20 * S)))
    scheduler.restore_pending(failed)
    assert scheduler.pending[1].last_run_at == T0 + 20 * S
    assert scheduler.pending[1].runs == 2
