"""Per-task rate limits (``rate_limit="10/s"``, ``"100/m"``, ``"1000/h"``).

A token bucket per task name lives in Redis, shared by every worker, so the
limit holds across the whole cluster. A message over the limit is put back
in the delayed set for when a token is free, never slept on in a worker.
"""

from __future__ import annotations

import time

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.scripts import script

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(rate: str | float | int, task_name: str = "?") -> float:
    """Tokens per second from ``"N/s|m|h"`` or a number (per second)."""
    if isinstance(rate, int | float):
        value = float(rate)
    else:
        count, _, unit = str(rate).partition("/")
        try:
            value = float(count) / UNITS[unit or "s"]
        except (ValueError, KeyError):
            raise ValueError(
                f"{task_name}: rate_limit={rate!r} is not valid; use 'N/s', 'N/m' or 'N/h'"
            ) from None
    if value <= 0:
        raise ValueError(f"{task_name}: rate_limit must be positive, not {rate!r}")
    return value


def acquire(task_name: str, rate: str | float | int) -> float:
    """Take one token; return 0 if granted, else seconds until one is free."""
    per_second = parse_rate(rate, task_name)
    client = get_broker()
    wait_ms = script(client, "rate_limit")(
        keys=[keys.rate_bucket(task_name)],
        args=[int(time.time() * 1000), per_second, max(1.0, per_second)],
        client=client,
    )
    return int(wait_ms) / 1000.0
