"""Promotion: moving a queue's due delayed messages into its streams.

Workers' housekeeping threads promote the queues they consume, and the beat
leader promotes the queues it sent runs ahead into, at their due time, so a
burst of periodic runs becomes fetchable when it is due whether or not a
worker's timer fires first. Any number of promoters may run at once:
promote.lua moves each message exactly once.

Each call moves at most ``limit`` messages (one Lua step holds Redis for
about as many microseconds as it moves messages, times a few), and one
``promote()`` makes at most ``calls`` of them, so a backlog of a million is
worked off in bounded steps that let other clients, and heartbeats, in
between.
"""

from __future__ import annotations

import time
from typing import Any

from django_taskq.broker import keys, scripts

#: Most delayed messages moved by one promote.lua call (a few ms of Redis time).
PROMOTE_LIMIT = 1000
#: Most promote.lua calls per queue in one promote() (then the caller comes back).
PROMOTE_CALLS = 5


def promote(
    client: Any,
    queue: str,
    *,
    now: float | None = None,
    limit: int = PROMOTE_LIMIT,
    calls: int = PROMOTE_CALLS,
) -> tuple[bool, float | None]:
    """Move ``queue``'s delayed messages due by ``now`` (default: the current time).

    Returns ``(backlog, next_due)``: ``backlog`` is True when more were due
    than ``calls`` calls moved (call again after other duties), and
    ``next_due`` is the epoch seconds of the earliest message left in the
    delayed set (None when it is empty; meaningless while ``backlog``).
    """
    promote_script = scripts.script(client, "promote")
    streams = [keys.stream(queue, p) for p in range(10)]
    next_due: float | None = None
    for _ in range(calls):
        stamp = time.time() if now is None else now
        moved, raw_next = promote_script(
            keys=[keys.delayed(queue), *streams], args=[int(stamp * 1000), limit], client=client
        )
        nd = float(raw_next)
        next_due = None if nd < 0 else nd / 1000.0
        if int(moved) < limit:
            return False, next_due
    return True, next_due
