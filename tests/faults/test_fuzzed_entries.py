"""Fuzzed stream entries among good tasks: the worker neither dies nor runs what it cannot trust.

Bad entries (tests/faults/fuzz.py, every kind several times) are XADDed
straight into the queue's stream, interleaved with good ``.delay()`` calls.
Then, exactly:

- no worker death: the prefork children are the same processes before and
  after, and the output has no "died" / crashed-consumer line;
- every good task ran and succeeded;
- every bad entry is dead-lettered once, with a reason (the expired one
  instead ends REVOKED, as docs/calling.md says);
- no bad entry ran a task body (the recorder shows no trace of its ids,
  not even the pickled tripwire);
- nothing is left in the streams or pending lists.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest
import redis

from django_taskq import states
from django_taskq.broker import keys
from tests.faults import fuzz, helpers
from tests.faults.recorder import Recorder
from tests.faults.scale import SCALE
from tests.faults.tasks import fault_fast

# A migrated database, so the worker's history recorder records the fuzz's
# events (a stuck recorder is one of the failures checked below).
pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DEADLINE = 60 if SCALE.name == "small" else 300
#: Stop waiting once nothing has changed for this long (a crash loop, a stuck worker).
STALLED = 20.0


def test_fuzzed_entries_are_dead_lettered_and_good_tasks_all_run(
    start_worker: Any, recorder: Recorder, broker: redis.Redis, figures: dict[str, Any]
) -> None:
    bad = fuzz.generate(SCALE.fuzz_bad, seed=20240601, huge_cap=SCALE.fuzz_huge)
    dead_expected = [e for e in bad if e.expect == fuzz.DEAD]
    revoked_expected = [e for e in bad if e.expect == fuzz.REVOKED]
    worker = start_worker("-c", "2", env={"TASKQ_TEST_ACCEPT_CONTENT": fuzz.WORKER_ACCEPTS})
    children_before = helpers.wait_children(worker, 2)
    assert fault_fast.delay(-1).get(timeout=30) == -1  # the worker works before the fuzz

    stream = keys.stream("default", 5)
    plan: list[fuzz.BadEntry | None] = [None] * SCALE.fuzz_good + list(bad)
    random.Random(1).shuffle(plan)
    good_ids: list[str] = []
    started = time.monotonic()
    for item in plan:
        if item is None:
            good_ids.append(fault_fast.delay(len(good_ids)).id)
        else:
            broker.xadd(stream, item.fields)  # type: ignore[arg-type]

    progress: list[tuple[float, tuple[int, ...]]] = []

    def settled() -> bool:
        done = len(good_ids) - len(recorder.read().lost(good_ids))
        state = (
            done,
            helpers.dead_letter_count(broker),
            helpers.pending(broker),
            helpers.stream_entries(broker),
        )
        if not progress or progress[-1][1] != state:
            progress.append((time.monotonic(), state))
        stalled = time.monotonic() - progress[-1][0] > STALLED
        finished = done == len(good_ids) and state[1] >= len(dead_expected) and state[2:] == (0, 0)
        return finished or stalled or worker.process.poll() is not None

    helpers.wait_until(settled, DEADLINE, interval=0.2)
    took = time.monotonic() - started
    # The worker's history recorder reads the events of every bad entry too
    # (a received entry lists their raw ids): it must get through them all.
    helpers.wait_until(lambda: helpers.history_behind(broker) == 0, STALLED, interval=0.2)

    tally = recorder.read()
    children_after = sorted(worker.children())
    deaths = helpers.death_lines(worker)
    good_states = Counter(helpers.result_states(broker, good_ids).values())
    matched, unmatched = fuzz.match_dead_letters(bad, helpers.dead_letters())
    kind_of = {e.token: e.kind for e in bad}
    not_dead = Counter(kind_of[e.token] for e in dead_expected if not matched[e.token])
    twice = Counter(kind_of[e.token] for e in bad if len(matched[e.token]) > 1)
    no_reason = Counter(
        kind_of[token] for token, rows in matched.items() for row in rows if not row.get("reason")
    )
    revoked_states = helpers.result_states(broker, [e.token for e in revoked_expected])
    wrongly_dead = Counter(kind_of[e.token] for e in revoked_expected if matched[e.token])
    not_revoked = [t for t, s in revoked_states.items() if s != states.REVOKED]
    ran = Counter(kind_of[e.token] for e in bad if tally.ran(e.ids))
    figures.update(
        bad_entries=len(bad),
        kinds=len(Counter(e.kind for e in bad)),
        good_tasks=len(good_ids),
        took_s=round(took, 1),
        worker_alive=worker.process.poll() is None,
        children_replaced=children_before != children_after,
        death_lines=len(deaths),
        good_lost=len(tally.lost(good_ids)),
        good_states=dict(good_states),
        dead_letters=helpers.dead_letter_count(broker),
        dead_expected=len(dead_expected),
        not_dead_lettered=dict(not_dead),
        dead_lettered_twice=dict(twice),
        without_reason=dict(no_reason),
        unmatched_dead_letters=len(unmatched),
        expired_not_revoked=len(not_revoked),
        expired_dead_lettered=dict(wrongly_dead),
        bad_that_ran=dict(ran),
        left_pending=helpers.pending(broker),
        left_in_streams=helpers.stream_entries(broker),
    )
    problems = []
    if worker.process.poll() is not None:
        problems.append(f"the worker exited with {worker.process.returncode}")
    if children_before != children_after:
        problems.append(f"children replaced: {children_before} -> {children_after}")
    if deaths:
        problems.append(
            f"{len(deaths)} death lines, first: {deaths[:3]}\n{helpers.death_report(worker)}"
        )
    if tally.lost(good_ids) or good_states != Counter({states.SUCCESS: len(good_ids)}):
        problems.append(f"good tasks: {len(tally.lost(good_ids))} lost, states {good_states}")
    if not_dead:
        problems.append(f"not dead-lettered, by kind: {dict(not_dead)}")
    if twice or no_reason or unmatched:
        problems.append(f"dead-lettered twice {dict(twice)}, without reason {dict(no_reason)}, ")
        problems[-1] += f"{len(unmatched)} dead letters of no entry"
    if not_revoked or wrongly_dead:
        problems.append(f"expired: {len(not_revoked)} not REVOKED, dead-lettered {wrongly_dead}")
    if ran:
        problems.append(f"bad entries that ran a task body, by kind: {dict(ran)}")
    if helpers.history_behind(broker):
        problems.append(f"the history recorder is stuck: {helpers.history_behind(broker)} behind")
        problems.append("\n".join(line.rstrip() for line in worker.lines if "recorder" in line))
    if helpers.pending(broker) or helpers.stream_entries(broker):
        problems.append(
            f"left behind: {helpers.pending(broker)} pending, "
            f"{helpers.stream_entries(broker)} in streams"
        )
    assert not problems, "\n".join(problems)
