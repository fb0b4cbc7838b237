"""Sending runs ahead, on a real Redis: the delayed set, promotion at the due time, withdrawal."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest

from django_taskq import shared_task
from django_taskq.beat import sendahead
from django_taskq.beat.ahead import AheadRun
from django_taskq.beat.dispatch import (
    Run,
    build_envelope,
    eta_of,
    last_sent,
    run_key,
    run_task_id,
    send_runs,
)
from django_taskq.beat.entry import RunOptions, epoch_ms, from_epoch_ms
from django_taskq.broker import delayed, keys, scripts

from .helpers import sent_messages

UTC = dt.UTC


@shared_task(name="tests.beat.expiring", expires=60)
def expiring() -> None:
    """A task whose own ``expires`` option applies to its periodic runs."""


def options(pk: int = 7, **kwargs) -> RunOptions:
    kwargs.setdefault("task", "tests.testapp.tasks.add")
    kwargs.setdefault("args", [1, 2])
    return RunOptions(periodic_task_id=pk, name=f"periodic-{pk}", **kwargs)


def soon(seconds: float = 30) -> dt.datetime:
    """A due time ``seconds`` from now, on a whole millisecond."""
    return from_epoch_ms(int((time.time() + seconds) * 1000))


def delayed_ids(broker, queue: str = "default") -> list[str]:
    return [m.split(b"\n")[1].decode() for m in broker.zrange(keys.delayed(queue), 0, -1)]


def ahead_run(outcome) -> AheadRun:
    return AheadRun(
        outcome.run.options.periodic_task_id, outcome.run.due, outcome.queue, outcome.task_id
    )


def test_a_run_not_due_yet_waits_in_the_delayed_set_with_its_due_time(broker):
    due = soon()
    [outcome] = send_runs([Run(options(), due)])
    assert (outcome.sent, outcome.ahead, outcome.queue) == (True, True, "default")
    assert outcome.task_id == run_task_id(options(), due)
    assert sent_messages(broker) == []  # nothing fetchable before it is due
    [(member, score)] = broker.zrange(keys.delayed("default"), 0, -1, withscores=True)
    assert int(score) == epoch_ms(due)
    assert member.split(b"\n")[1].decode() == outcome.task_id
    assert broker.exists(run_key(7, due, "default"))
    # Not a fact yet: a new leader must not skip it (its once key stops a duplicate).
    assert last_sent(broker) == {}
    again = send_runs([Run(options(), due)])
    assert (again[0].sent, again[0].duplicate, again[0].ahead) == (False, True, True)
    assert len(delayed_ids(broker)) == 1


def test_promotion_at_the_due_time_makes_it_fetchable_and_it_is_then_recorded(broker):
    due = soon(0.3)
    [outcome] = send_runs([Run(options(), due)])
    assert sendahead.promote_queues(broker, ["default"]) == set()
    assert sent_messages(broker) == []  # not due yet: promote moves nothing
    while time.time() * 1000 < epoch_ms(due):
        time.sleep(0.005)
    sendahead.promote_queues(broker, ["default"])
    [message] = sent_messages(broker)
    assert message.added_ms >= epoch_ms(due)  # never early
    assert message.body["id"] == outcome.task_id
    assert message.body["eta"] == pytest.approx(due.timestamp())
    sendahead.record_sent(broker, [ahead_run(outcome)])
    assert last_sent(broker) == {7: due}


def test_a_run_due_already_goes_straight_to_its_stream():
    past = soon(-2)
    [outcome] = send_runs([Run(options(), past)])
    assert (outcome.sent, outcome.ahead) == (True, False)


def test_withdrawing_removes_the_message_and_its_once_key_so_it_can_be_sent_again(broker):
    due = soon()
    outcomes = send_runs([Run(options(pk), due) for pk in range(1, 4)])
    assert sendahead.withdraw(broker, [ahead_run(outcomes[1])]) == [True]
    assert sorted(delayed_ids(broker)) == sorted([outcomes[0].task_id, outcomes[2].task_id])
    assert not broker.exists(run_key(2, due, "default"))
    assert broker.exists(run_key(1, due, "default"))
    # Sent again (an edit): once, with the same task id.
    [again] = send_runs([Run(options(2, args=[5, 6]), due)])
    assert (again.sent, again.task_id) == (True, outcomes[1].task_id)
    assert len(delayed_ids(broker)) == 3
    # Taking back what is not there any more is a no-op.
    assert sendahead.withdraw(broker, [ahead_run(outcomes[0])] * 2) == [True, False]


def test_a_run_promoted_already_cannot_be_withdrawn_and_keeps_its_once_key(broker):
    due = soon(0.2)
    [outcome] = send_runs([Run(options(), due)])
    while time.time() * 1000 < epoch_ms(due):
        time.sleep(0.005)
    sendahead.promote_queues(broker, ["default"])
    assert sendahead.withdraw(broker, [ahead_run(outcome)]) == [False]
    assert broker.exists(run_key(7, due, "default"))
    assert len(sent_messages(broker)) == 1


def test_withdrawing_many_runs_due_at_one_instant_scans_that_instant_once(broker):
    due = soon()
    outcomes = send_runs([Run(options(pk, task="x.y", args=[]), due) for pk in range(300)])
    send_runs([Run(options(999, task="x.y", args=[]), due + dt.timedelta(milliseconds=1))])
    taken = outcomes[::3]
    assert sendahead.withdraw(broker, [ahead_run(o) for o in taken]) == [True] * len(taken)
    left = set(delayed_ids(broker))
    assert len(left) == 300 - len(taken) + 1
    assert not left & {o.task_id for o in taken}


def test_the_task_id_names_the_run():
    due = soon()
    same = run_task_id(options(), due)
    assert same == run_task_id(options(), due) == build_envelope(options(), due).id
    assert same != run_task_id(options(), due + dt.timedelta(milliseconds=1))
    assert same != run_task_id(options(8), due)
    renamed = options()
    renamed.name = "other"
    assert same != run_task_id(renamed, due)
    assert build_envelope(options(), None).id != build_envelope(options(), None).id  # run now


def test_the_eta_is_never_a_millisecond_early():
    rng = random.Random(7)
    for _ in range(20000):
        due_ms = rng.randrange(1_600_000_000_000, 2_000_000_000_000)
        assert int(eta_of(from_epoch_ms(due_ms)) * 1000) == due_ms


def test_per_run_parts_differ_while_the_rest_is_built_once():
    opts = options(expire_seconds=30)
    first = build_envelope(opts, soon(10))
    second = build_envelope(opts, soon(20))
    assert opts.template is not None
    assert first.id != second.id and first.eta != second.eta
    assert first.headers["periodic_task_due"] != second.headers["periodic_task_due"]
    assert second.expires == pytest.approx(second.eta + 30)
    assert opts.template.headers.get("periodic_task_due") is None  # the template is untouched


def test_the_tasks_own_expiry_counts_from_the_due_time_not_from_sending_ahead():
    due = soon(4)
    envelope = build_envelope(options(task="tests.beat.expiring", args=[]), due)
    assert envelope.expires == pytest.approx(due.timestamp() + 60)


def test_promote_moves_only_due_members_whole_and_reports_the_next_due(broker):
    now_ms = int(time.time() * 1000)
    broker.zadd(
        keys.delayed("q"),
        {
            "5\nlater\n{}": now_ms + 60_000,
            "3\ndue-a\n{}": now_ms - 2,
            "not a member we wrote": now_ms - 1,
            "9\ndue-b\n{}": now_ms - 1,
        },
    )
    backlog, next_due = delayed.promote(broker, "q", now=now_ms / 1000)
    assert backlog is False
    assert next_due == pytest.approx((now_ms + 60_000) / 1000)
    assert [m.decode() for m in broker.zrange(keys.delayed("q"), 0, -1)] == ["5\nlater\n{}"]
    assert broker.xrange(keys.stream("q", 3))[0][1][b"i"] == b"due-a"
    assert broker.xrange(keys.stream("q", 9))[0][1][b"i"] == b"due-b"
    # A member not in the expected form is moved whole to priority 0, never dropped.
    [(_, fields)] = broker.xrange(keys.stream("q", 0))
    assert fields == {b"i": b"", b"b": b"not a member we wrote", b"dc": b"0"}


def test_promote_stops_at_its_limit_and_says_a_backlog_is_left(broker):
    now_ms = int(time.time() * 1000)
    broker.zadd(keys.delayed("q"), {f"5\nid{i}\n{{}}": now_ms - 10 for i in range(25)})
    assert delayed.promote(broker, "q", limit=10, calls=2)[0] is True
    assert broker.xlen(keys.stream("q", 5)) == 20
    assert delayed.promote(broker, "q", limit=10, calls=2) == (False, None)
    assert broker.xlen(keys.stream("q", 5)) == 25
    assert "promote" in scripts.names()


def test_beats_racing_on_a_burst_sent_ahead_queue_each_run_once(broker):
    """Four senders race on the same 200 runs not due yet: 200 messages, promoted once each."""
    due = soon(0.5)
    runs = [Run(options(pk, task="x.y", args=[]), due) for pk in range(200)]
    barrier = threading.Barrier(4)
    sent: list[int] = []

    def race() -> None:
        barrier.wait()
        sent.append(sum(o.sent for o in send_runs(runs)))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent) == 200
    assert len(delayed_ids(broker)) == 200
    while time.time() * 1000 < epoch_ms(due):
        time.sleep(0.005)
    racers = [threading.Thread(target=sendahead.promote_queues, args=(broker, ["default"]))]
    racers += [threading.Thread(target=delayed.promote, args=(broker, "default")) for _ in range(3)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    messages = sent_messages(broker)
    assert sorted(m.name or "" for m in messages) == sorted(f"periodic-{pk}" for pk in range(200))
    assert delayed_ids(broker) == []


def test_the_queues_of_a_burst_are_all_promoted(broker):
    """On Cluster their slots may be on different masters (promoted in parallel there)."""
    due = soon(0.3)
    queues = ["burst-a", "burst-b", "burst-c"]
    runs = [Run(options(pk, task="x.y", args=[], queue=queues[pk % 3]), due) for pk in range(30)]
    send_runs(runs)
    while time.time() * 1000 < epoch_ms(due):
        time.sleep(0.005)
    assert sendahead.promote_queues(broker, queues) == set()
    for queue in queues:
        assert broker.zcard(keys.delayed(queue)) == 0
        assert broker.xlen(keys.stream(queue, 5)) == 10
