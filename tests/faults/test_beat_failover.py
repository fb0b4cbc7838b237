"""Two ``taskq_beat`` processes, an every-second schedule, the leader killed -9 again and again.

Each time the leader is SIGKILLed (no lease release, no flush) the other
takes over once the lease (TASKQ_BEAT_LEASE_SECONDS = 3 s here) expires,
and the killed one is started again, as a supervisor would. What beat sent
is read straight from the streams (no worker runs). Exactly:

- no due time is sent twice (each run is (periodic task, due time); the
  set-if-absent and the enqueue are one Lua step);
- no due time is missing: the lease (3 s) leaves a leaderless window of
  more than one due time, and the new leader sends each due time the old
  one did not (a handover is not downtime: nothing is collapsed), so the
  gap between consecutive sent due times is the schedule's one second;
- it goes on after the last kill.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import redis

from django_taskq.models import IntervalSchedule, PeriodicTask
from tests.beat.helpers import BeatProcess, leader_pid, sent_messages
from tests.faults import helpers
from tests.faults.scale import SCALE

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEASE = 3.0
NAME = "faults-every-second"


@pytest.fixture
def beats() -> Iterator[dict[str, BeatProcess]]:
    running: dict[str, BeatProcess] = {}
    yield running
    for beat in running.values():
        beat.kill()


def dues(broker: redis.Redis) -> list[dt.datetime]:
    return [
        dt.datetime.fromisoformat(m.due) for m in sent_messages(broker) if m.name == NAME and m.due
    ]


def test_leader_killed_repeatedly_sends_every_due_time_once_without_gaps(
    broker: redis.Redis, beats: dict[str, BeatProcess], figures: dict[str, Any]
) -> None:
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.create(
        name=NAME, task="tests.faults.tasks.fault_fast", interval=every_second, args=[0]
    )
    env = {"TASKQ_TEST_LEASE": str(LEASE)}
    for name in ("beat-a", "beat-b"):
        beats[name] = BeatProcess(name, env=env).start()

    def leader() -> str | None:
        pid = leader_pid(broker)
        return next((n for n, b in beats.items() if b.pid == pid), None)

    def taken_over(victim: str) -> bool:
        return leader() not in (None, victim)

    def runs_after(when: float, count: int) -> bool:
        return sum(1 for d in dues(broker) if d.timestamp() > when) >= count

    assert helpers.wait_until(lambda: leader() is not None, 30), "no leader elected"
    assert helpers.wait_until(lambda: runs_after(0, 3), 15), "the leader sends nothing"
    kills: list[dict[str, Any]] = []
    problems: list[str] = []
    for _ in range(SCALE.beat_kills):
        victim = leader()
        if victim is None:
            problems.append("no leader before a kill")
            break
        killed_at = time.time()
        beats[victim].kill()
        took_over = helpers.wait_until(partial(taken_over, victim), LEASE + 10)
        takeover_s = time.time() - killed_at
        beats[victim] = BeatProcess(victim, env=env).start()  # restarted, same name
        kills.append({"killed": victim, "takeover_s": round(takeover_s, 2) if took_over else None})
        if not took_over:
            problems.append(f"nobody took over within {LEASE + 10} s of killing {victim}")
            break
        restarted_at = time.time()
        if not helpers.wait_until(partial(runs_after, restarted_at, 3), 15):
            problems.append(f"no runs sent after {victim} was killed")
            break
    last_kill_done = time.time()
    kept_going = helpers.wait_until(lambda: runs_after(last_kill_done, 2), 10)

    sent = sorted(dues(broker))
    doubled = {d.isoformat(): n for d, n in Counter(sent).items() if n > 1}
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sorted(set(sent)))]
    long_gaps = [g for g in gaps if g > 1.0]
    figures.update(
        lease_s=LEASE,
        kills=len(kills),
        takeover_s=[k["takeover_s"] for k in kills],
        runs_sent=len(sent),
        duplicate_runs=sum(n - 1 for n in doubled.values()),
        max_gap_s=max(gaps, default=None),
        gaps_over_1s=long_gaps,
    )
    if doubled:
        problems.append(f"due times sent more than once: {doubled}")
    if long_gaps:
        problems.append(f"due times missing (gaps over the 1 s schedule): {long_gaps}")
    if not kept_going:
        problems.append("beat stopped sending after the last kill")
    if len(kills) < SCALE.beat_kills and not problems:
        problems.append(f"only {len(kills)} of {SCALE.beat_kills} kills")
    outputs = "\n".join(f"--- {n} ---\n{b.output[-3000:]}" for n, b in beats.items())
    assert not problems, "\n".join(problems) + "\n" + outputs
