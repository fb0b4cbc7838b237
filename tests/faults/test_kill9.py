"""kill -9 of prefork children and of the worker parent, again and again, under load: 0 lost.

Tasks are sent up front; each kill happens when a further share of them
has finished, alternately of one prefork child (the parent must notice and
redeliver what it ran) and of the parent (its children die with it; a new
worker is started, as a supervisor would, and the lost consumers' messages
come back after the heartbeat timeout).

Asserted exactly: every task finishes at least once, nothing is left
pending or in the streams, no orphaned child survives its parent, and every
duplicate is explained by a kill (its first run ended within two seconds
before a kill, the ack not written yet, or between the kill and the
victims' end: a prefork child outlives its killed parent until its
parent-death signal lands, and what it finishes then is never acked). Measured per kill: what
it interrupted, how long until work resumed (the first task to finish
after it), and until every interrupted task had finished on a redelivery
(a redelivered message goes to the back of its queue, so that includes the
wait behind the backlog).
"""

from __future__ import annotations

import os
import random
import signal
import time
from functools import partial
from typing import Any

import pytest
import redis

from tests.faults import helpers
from tests.faults.recorder import END, Recorder, Tally
from tests.faults.scale import SCALE
from tests.faults.tasks import fault_slow

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

HEARTBEAT = 3.0
TASK_SECONDS = 0.01
CONCURRENCY = 2
#: A duplicate whose first run ended this close before a kill is the kill's doing.
ACK_WINDOW = 2.0


def test_kill_9_of_children_and_parent_loses_nothing(
    start_worker: Any, recorder: Recorder, broker: redis.Redis, figures: dict[str, Any]
) -> None:
    env = {"TASKQ_WORKER_HEARTBEAT_TIMEOUT": str(HEARTBEAT)}
    worker = start_worker("-c", str(CONCURRENCY), env=env)
    helpers.wait_children(worker, CONCURRENCY)
    total, kills = SCALE.kill_tasks, SCALE.kills
    started = time.monotonic()
    ids: list[str] = []
    for start in range(0, total, 500):
        calls = [(TASK_SECONDS, n) for n in range(start, min(start + 500, total))]
        ids += [r.id for r in fault_slow.delay_many(calls)]
    rng = random.Random(9)
    record: list[dict[str, Any]] = []
    problems: list[str] = []
    orphans: list[str] = []

    for k in range(kills):
        threshold = (k + 1) * total // (kills + 1)
        if not recorder.wait(partial(_finished_at_least, threshold), 120):
            problems.append(f"kill {k}: stuck below {threshold} finished tasks")
            break
        kind = "child" if k % 2 == 0 else "parent"
        victims = sorted(worker.children())
        at = time.time()
        if kind == "child":
            victim = rng.choice(victims)
            os.kill(victim, signal.SIGKILL)
            victims = [victim]
            helpers.wait_until(partial(_dead, victim), 10)
        else:
            pgid = worker.pid
            os.kill(worker.pid, signal.SIGKILL)
            worker.process.wait(10)
            if not helpers.wait_until(partial(_group_gone, pgid), 10):
                orphans += [helpers.describe(p) for p in helpers.group_members(pgid)]
                helpers.kill_group(pgid)
        # Until here a victim may still have run: a prefork child outlives its
        # killed parent until its parent-death SIGKILL lands, and a task it
        # finishes meanwhile has no parent left to store its result and ack.
        gone = time.time()
        interrupted = recorder.read().open_runs(victims)
        entry: dict[str, Any] = {"kind": kind, "done": threshold, "at": at, "gone": gone}
        entry["interrupted_ids"] = interrupted
        if kind == "child":
            replaced = helpers.wait_until(partial(_replaced, worker, victims[0]), 15)
            entry["respawn_s"] = round(time.time() - at, 3) if replaced else None
        else:
            worker = start_worker("-c", str(CONCURRENCY), env=env)
            helpers.wait_children(worker, CONCURRENCY)
            entry["restart_s"] = round(time.time() - at, 3)
        record.append(entry)

    finished = recorder.wait_finished(ids, 120 + total * TASK_SECONDS)
    settled = helpers.wait_until(
        lambda: helpers.pending(broker) == 0 and helpers.stream_entries(broker) == 0,
        3 * HEARTBEAT + 10 if finished else 0,
    )
    tally = recorder.read()
    for e in record:  # measured afterwards, from the recorder, so no kill waits on another
        at, interrupted = e["at"], e.pop("interrupted_ids")
        later = [ev.at for ev in tally.events if ev.kind == END and ev.at > at]
        e["resume_s"] = round(min(later) - at, 3) if later else None
        e["interrupted"] = len(interrupted)
        if interrupted and not tally.lost(interrupted):
            last = max(min(x for x in tally.ends(i) if x > at) for i in interrupted)
            e["recovery_s"] = round(last - at, 3)
        else:
            e["recovery_s"] = None if interrupted else e["resume_s"]
    windows = [(e["at"] - ACK_WINDOW, e.pop("gone")) for e in record]
    duplicates = tally.duplicates()
    unexplained = [
        i for i in duplicates if not any(low <= tally.ends(i)[0] <= high for low, high in windows)
    ]
    lost = tally.lost(ids)
    extra = set(tally.finished) - set(ids)
    figures.update(
        tasks=total,
        kills=len(record),
        lost=len(lost),
        duplicates=len(duplicates),
        duplicates_unexplained=len(unexplained),
        executions_started=sum(tally.started[i] for i in ids),
        orphans=len(orphans),
        left_pending=helpers.pending(broker),
        left_in_streams=helpers.stream_entries(broker),
        recovery_s=[e["recovery_s"] for e in record],
        resume_s=[e["resume_s"] for e in record],
        interrupted=[e["interrupted"] for e in record],
        per_kill=[{k: v for k, v in e.items() if k != "at"} for e in record],
        took_s=round(time.monotonic() - started, 1),
    )
    if len(record) < kills:
        problems.append(f"only {len(record)} of {kills} kills happened")
    if lost or not finished:
        problems.append(f"{len(lost)} of {total} tasks lost, e.g. {sorted(lost)[:3]}")
    if not settled:
        problems.append(
            f"left behind: {helpers.pending(broker)} pending, "
            f"{helpers.stream_entries(broker)} in streams"
        )
    if orphans:
        problems.append(f"children outlived their killed parent: {orphans}")
    if unexplained:
        problems.append(f"{len(unexplained)} duplicates no kill explains, e.g. {unexplained[:3]}")
    if extra:
        problems.append(f"{len(extra)} tasks ran that were never sent")
    for e in record:
        if e["resume_s"] is None or e["recovery_s"] is None or e.get("respawn_s", 0) is None:
            problems.append(f"no recovery after kill {e}")
    assert not problems, "\n".join(problems)


def _finished_at_least(count: int, tally: Tally) -> bool:
    return len(tally.finished) >= count


def _dead(pid: int) -> bool:
    """``pid`` has exited (gone from /proc, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def _group_gone(pgid: int) -> bool:
    return not helpers.group_members(pgid)


def _replaced(worker: Any, victim: int) -> bool:
    children = worker.children()
    return len(children) == CONCURRENCY and victim not in children
