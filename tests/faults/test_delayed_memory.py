"""Countdown tasks live in Redis, not in the worker: its memory stays flat however many wait.

Celery workers hold every ETA/countdown task in memory until it is due, so
a burst of them grows the worker without bound. Here 200,000 (small:
20,000) tasks with countdowns spread over the next minutes are sent while a
worker runs; none is due during the test. Exactly:

- the worker's processes (parent and children, the same processes before
  and after, so no recycling hides growth) keep their RSS within a small
  margin (8 MiB in all, or 2 %, whichever is more);
- every one of them is in the delayed set and none has run;
- the worker still serves a normal task at once.

Measured: RSS before and after, and Redis ``used_memory`` per delayed task
(INFO memory; it includes the task's PENDING result record).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from tests.faults import helpers
from tests.faults.recorder import Recorder
from tests.faults.scale import SCALE
from tests.faults.tasks import fault_fast

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

MARGIN_KIB = 8 * 1024
MARGIN_SHARE = 0.02
STEPS = 1000  # distinct countdowns, each sent in one round trip
FIRST_DUE_S, SPREAD_S = 300.0, 600.0


def test_countdown_tasks_do_not_grow_the_worker(
    start_worker: Any, recorder: Recorder, broker: redis.Redis, figures: dict[str, Any]
) -> None:
    worker = start_worker("-c", "2")
    children = helpers.wait_children(worker, 2)
    warm = [fault_fast.delay(n) for n in range(50)]  # every code path a task takes, loaded
    assert [r.get(timeout=30) for r in warm] == list(range(50))
    pids = [worker.pid, *children]
    rss_before = {pid: helpers.rss_kib([pid]) for pid in pids}
    memory_before = helpers.used_memory(broker)

    total = SCALE.countdowns
    per_step = total // STEPS
    ids: list[str] = []
    started = time.monotonic()
    for step in range(STEPS):
        countdown = FIRST_DUE_S + SPREAD_S * step / STEPS
        count = per_step if step < STEPS - 1 else total - per_step * (STEPS - 1)
        calls = [((n,), None) for n in range(len(ids), len(ids) + count)]
        ids += [r.id for r in fault_fast.apply_many(calls, countdown=countdown)]
    send_s = time.monotonic() - started
    memory_after = helpers.used_memory(broker)

    probe = fault_fast.delay(-1)  # the worker has seen every wake-up by the time this runs
    probe_value = probe.get(timeout=30)
    second = fault_fast.delay(-2).get(timeout=30)
    rss_after = {pid: helpers.rss_kib([pid]) for pid in pids}
    same_processes = sorted(worker.children()) == children and worker.process.poll() is None
    delayed = helpers.delayed(broker)
    ran = recorder.read().ran(ids)
    before, after = sum(rss_before.values()), sum(rss_after.values())
    allowed = max(MARGIN_KIB, int(before * MARGIN_SHARE))
    figures.update(
        countdown_tasks=total,
        send_s=round(send_s, 1),
        rss_before_kib=before,
        rss_after_kib=after,
        rss_growth_kib=after - before,
        rss_allowed_growth_kib=allowed,
        rss_per_process_kib={str(pid): [rss_before[pid], rss_after[pid]] for pid in pids},
        redis_bytes_per_delayed_task=round((memory_after - memory_before) / total, 1),
        redis_used_memory_delta_mib=round((memory_after - memory_before) / 2**20, 1),
        delayed_in_redis=delayed,
        ran_early=len(ran),
        same_processes=same_processes,
    )
    problems = []
    if not same_processes:
        problems.append("the worker's processes changed: the RSS comparison means nothing")
    if after - before > allowed:
        problems.append(f"worker RSS grew {after - before} KiB (allowed {allowed} KiB)")
    if delayed != total:
        problems.append(f"{delayed} of {total} countdown tasks in the delayed set")
    if ran:
        problems.append(f"{len(ran)} countdown tasks ran minutes early")
    if (probe_value, second) != (-1, -2):
        problems.append("the worker did not serve a normal task")
    assert not problems, "\n".join(problems)
