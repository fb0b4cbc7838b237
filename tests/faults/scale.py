"""How big the fault tests are: TASKQ_FAULTS_SCALE=small (default, CI) or full (``make faults``).

``small`` keeps the whole tests/faults run within about four minutes on two
cores and still exercises every fault kind several times; ``full`` uses
the numbers the reliability issue asks for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "TASKQ_FAULTS_SCALE"


@dataclass(frozen=True)
class Scale:
    name: str
    #: kill -9 test: tasks sent, and kills (alternately a child and the parent)
    kill_tasks: int
    kills: int
    #: Redis restart test: restarts of each kind (SIGTERM, SIGKILL)
    redis_restarts: int
    #: connection test: faults of each kind, and how long a stall lasts
    drops: int
    stall_seconds: float
    #: fuzz test: bad entries, good tasks, and the cap on 5 MB bodies
    fuzz_bad: int
    fuzz_good: int
    fuzz_huge: int
    #: beat test: kills of the leader
    beat_kills: int
    #: memory test: countdown tasks
    countdowns: int


SMALL = Scale(
    name="small",
    kill_tasks=2_000,
    kills=3,
    redis_restarts=2,
    drops=2,
    stall_seconds=12.0,
    fuzz_bad=600,
    fuzz_good=200,
    fuzz_huge=3,
    beat_kills=3,
    countdowns=20_000,
)
FULL = Scale(
    name="full",
    kill_tasks=20_000,
    kills=20,
    redis_restarts=3,
    drops=10,
    stall_seconds=12.0,
    fuzz_bad=10_000,
    fuzz_good=1_000,
    fuzz_huge=10,
    beat_kills=5,
    countdowns=200_000,
)


def current() -> Scale:
    name = os.environ.get(ENV, "small").strip().lower() or "small"
    scales = {s.name: s for s in (SMALL, FULL)}
    if name not in scales:
        raise RuntimeError(f"{ENV}={name!r}: choose one of {', '.join(scales)}")
    return scales[name]


SCALE = current()
