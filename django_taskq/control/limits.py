"""Runtime task limits set by ``taskq_control``: where they are kept and how they are read.

``rate_limit`` and ``time_limit`` change how workers run a task without a
deploy. They are kept in one Redis hash (``keys.task_limits()``) rather than
only broadcast, so that they hold for every worker: the ones running now
(told through the control channel, they read the hash again), prefork
children spawned later and workers started later (they read it at start).
A field is ``rate:<task name>`` -> the rate as given (``"10/s"``; ``"0"``: no
limit), or ``time:<task name>`` -> JSON ``[soft, hard]`` (null: no limit).
A task without a field runs with the limits it was declared with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django_taskq.broker import keys

RATE = "rate:"
TIME = "time:"
#: The stored rate that means "no rate limit".
NO_RATE = "0"


@dataclass(frozen=True)
class TaskLimits:
    """Every runtime limit: task name -> rate (None: no limit), -> (soft, hard)."""

    rates: dict[str, str | None] = field(default_factory=dict)
    times: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


def read(client: Any) -> TaskLimits:
    """The limits in Redis now (fields that do not parse are skipped)."""
    limits = TaskLimits()
    for raw_name, raw_value in (client.hgetall(keys.task_limits()) or {}).items():
        name, value = _s(raw_name), _s(raw_value)
        if name.startswith(RATE):
            limits.rates[name[len(RATE) :]] = None if value == NO_RATE else value
        elif name.startswith(TIME):
            pair = _time_pair(value)
            if pair is not None:
                limits.times[name[len(TIME) :]] = pair
    return limits


def set_rate(client: Any, task: str, rate: str | None) -> None:
    """Keep ``rate`` for ``task`` (None: run it without a rate limit)."""
    client.hset(keys.task_limits(), RATE + task, NO_RATE if rate is None else rate)


def set_time(client: Any, task: str, soft: float | None, hard: float | None) -> None:
    """Keep the soft and hard time limits of ``task`` (None: no such limit)."""
    client.hset(keys.task_limits(), TIME + task, json.dumps([soft, hard]))


def reset(client: Any, kind: str, task: str) -> None:
    """Forget the runtime ``kind`` (RATE or TIME) limit of ``task``: its declared one applies."""
    client.hdel(keys.task_limits(), kind + task)


def _time_pair(value: str) -> tuple[float | None, float | None] | None:
    try:
        soft, hard = json.loads(value)
        return (
            None if soft is None else float(soft),
            None if hard is None else float(hard),
        )
    except (ValueError, TypeError):
        return None


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
