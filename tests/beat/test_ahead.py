"""Runs sent ahead, in the scheduler's books: no Redis, no database, a fake clock.

A run sent before its due time is not sent yet: it is counted (last_run_at,
total_run_count, one-off disabling) when its due time comes, and taken back
when its periodic task changes or goes away first.
"""

from __future__ import annotations

import datetime as dt

from django_taskq.beat.ahead import AheadBook, AheadRun
from django_taskq.beat.dispatch import Outcome, Run
from django_taskq.beat.entry import epoch_ms
from django_taskq.beat.scheduler import Scheduler
from django_taskq.schedules import clocked, schedule

from .test_scheduler import T0, S, entry, loaded

AHEAD = 5.0


def ahead_outcomes(runs: list[Run], *, duplicate: bool = False) -> list[Outcome]:
    return [
        Outcome(
            run=r,
            sent=not duplicate,
            duplicate=duplicate,
            task_id=f"id-{r.options.periodic_task_id}-{epoch_ms(r.due)}",
            queue="default",
            ahead=True,
        )
        for r in runs
    ]


def send_ahead(scheduler: Scheduler, now: dt.datetime) -> list[Run]:
    runs = scheduler.pop_due(now, ahead=AHEAD)
    scheduler.sent(ahead_outcomes(runs))
    return runs


def ms(value: dt.datetime) -> int:
    return epoch_ms(value)


def test_runs_within_the_horizon_are_popped_before_they_are_due():
    scheduler = loaded(entry(1, schedule(2)), entry(2, schedule(60)))
    runs = scheduler.pop_due(T0 + 0.5 * S, ahead=AHEAD)
    # Task 1 is due at T0+2 and T0+4 (both within 5 s); task 2 not before T0+60.
    assert sorted((r.options.periodic_task_id, r.due) for r in runs) == [(1, T0 + 2 * S)]
    scheduler.sent(ahead_outcomes(runs))
    again = scheduler.pop_due(T0 + 0.5 * S, ahead=AHEAD)
    assert [(r.options.periodic_task_id, r.due) for r in again] == [(1, T0 + 4 * S)]


def test_a_run_sent_ahead_counts_as_sent_only_when_due():
    scheduler = loaded(entry(1, schedule(10)))
    send_ahead(scheduler, T0 + 6 * S)
    assert scheduler.pending == {}  # queued, not sent: nothing to write back
    assert scheduler.entries[1].last_run_at is None
    assert scheduler.next_due() == T0 + 20 * S  # the entry moved on
    assert scheduler.ahead.next_promotion() == ms(T0 + 10 * S)

    assert scheduler.ahead.queues_due(ms(T0 + 10 * S) - 1) == set()
    assert scheduler.ahead.queues_due(ms(T0 + 10 * S)) == {"default"}
    runs = scheduler.ahead.take_due(ms(T0 + 10 * S))
    scheduler.confirm(runs)
    assert scheduler.pending[1].last_run_at == T0 + 10 * S
    assert scheduler.pending[1].runs == 1
    assert scheduler.entries[1].last_run_at == T0 + 10 * S


def test_a_run_found_queued_by_another_beat_is_adopted_but_not_counted():
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 6 * S, ahead=AHEAD)
    scheduler.sent(ahead_outcomes(runs, duplicate=True))
    assert scheduler.ahead.holds(1, T0 + 10 * S)
    scheduler.confirm(scheduler.ahead.take_due(ms(T0 + 10 * S)))
    assert scheduler.pending[1].last_run_at == T0 + 10 * S
    assert scheduler.pending[1].runs == 0  # the other beat counts it


def test_an_edit_takes_back_the_runs_sent_ahead_and_sends_them_again():
    scheduler = loaded(entry(1, schedule(2)))
    send_ahead(scheduler, T0 + 0.5 * S)
    send_ahead(scheduler, T0 + 0.5 * S)
    assert len(scheduler.ahead) == 2  # due at T0+2 and T0+4
    edited = entry(1, schedule(2))
    edited.fingerprint = ("edited",)
    assert scheduler.upsert(edited) == 1
    assert [r.due for r in scheduler.withdrawals] == [T0 + 2 * S, T0 + 4 * S]
    assert len(scheduler.ahead) == 0
    # Nothing was sent: the schedule starts again from the first withdrawn run.
    assert scheduler.next_due() == T0 + 2 * S
    withdrawals, scheduler.withdrawals = scheduler.withdrawals, []
    scheduler.withdrawn(withdrawals, [True, True])
    assert scheduler.pending == {}
    assert [r.due for r in scheduler.pop_due(T0 + 0.5 * S, ahead=AHEAD)] == [T0 + 2 * S]


def test_an_unchanged_row_keeps_its_runs_sent_ahead():
    scheduler = loaded(entry(1, schedule(2)))
    send_ahead(scheduler, T0 + 0.5 * S)
    assert scheduler.upsert(entry(1, schedule(2))) == 0
    assert scheduler.withdrawals == []
    assert scheduler.ahead.holds(1, T0 + 2 * S)


def test_a_disable_or_delete_takes_back_the_runs_sent_ahead():
    scheduler = loaded(entry(1, schedule(2)), entry(2, schedule(2)))
    send_ahead(scheduler, T0 + 0.5 * S)
    scheduler.replace_all([entry(2, schedule(2))], {})  # task 1 disabled or deleted
    assert [(r.entry_id, r.due) for r in scheduler.withdrawals] == [(1, T0 + 2 * S)]
    assert 1 not in scheduler.entries
    assert scheduler.ahead.holds(2, T0 + 2 * S)


def test_a_run_promoted_before_the_change_arrived_counts_as_sent():
    scheduler = loaded(entry(1, schedule(2)))
    send_ahead(scheduler, T0 + 0.5 * S)  # due at T0+2
    edited = entry(1, schedule(2))
    edited.fingerprint = ("edited",)
    scheduler.upsert(edited)
    withdrawals, scheduler.withdrawals = scheduler.withdrawals, []
    scheduler.withdrawn(withdrawals, [False])  # its due time had come: it ran as queued
    assert scheduler.pending[1].last_run_at == T0 + 2 * S
    assert scheduler.pending[1].runs == 1
    assert scheduler.next_due() == T0 + 4 * S  # not sent again


def test_a_one_off_run_sent_ahead_disables_its_task_when_due():
    scheduler = loaded(entry(1, clocked(T0 + 3 * S), one_off=True))
    send_ahead(scheduler, T0)
    assert 1 in scheduler.entries  # kept until its run is due: a change can still take it back
    scheduler.confirm(scheduler.ahead.take_due(ms(T0 + 3 * S)))
    assert scheduler.pending[1].disable
    assert 1 not in scheduler.entries


def test_a_run_queued_ahead_already_is_not_sent_twice():
    scheduler = loaded(entry(1, schedule(10)))
    scheduler.ahead.add(AheadRun(1, T0 + 10 * S, "default", "x"))  # adopted earlier
    assert scheduler.pop_due(T0 + 6 * S, ahead=AHEAD) == []
    assert scheduler.next_due() == T0 + 20 * S


def test_runs_due_now_are_still_sent_now():
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 12 * S, ahead=AHEAD)  # late (beat was down)
    assert [r.due for r in runs] == [T0 + 10 * S]


def test_stepping_down_forgets_runs_sent_ahead():
    scheduler = loaded(entry(1, schedule(2)))
    send_ahead(scheduler, T0 + 0.5 * S)
    scheduler.withdrawals.append(AheadRun(9, T0, "default", "y"))
    scheduler.drop_ahead()
    assert len(scheduler.ahead) == 0 and scheduler.withdrawals == []
    assert scheduler.ahead.next_promotion() is None


def test_the_book_promotes_each_due_time_once_and_skips_withdrawn_runs():
    book = AheadBook()
    book.add(AheadRun(1, T0, "a", "1"))
    book.add(AheadRun(2, T0, "b", "2"))
    book.add(AheadRun(3, T0 + S, "a", "3"))
    assert book.next_promotion() == ms(T0)
    assert book.queues_due(ms(T0)) == {"a", "b"}
    assert book.queues_due(ms(T0)) == set()
    assert [r.entry_id for r in book.take_entry(2)] == [2]
    assert [r.entry_id for r in book.take_due(ms(T0 + S))] == [1, 3]
    assert len(book) == 0


def test_a_run_sent_ahead_for_a_task_removed_meanwhile_is_taken_back():
    scheduler = loaded(entry(1, schedule(10)))
    runs = scheduler.pop_due(T0 + 6 * S, ahead=AHEAD)
    scheduler.remove(1)  # its row went away while the run was being sent
    scheduler.sent(ahead_outcomes(runs))
    assert [(r.entry_id, r.due) for r in scheduler.withdrawals] == [(1, T0 + 10 * S)]
