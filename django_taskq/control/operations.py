"""Named remote operations on workers: Celery's ``inspect`` and ``control`` verbs.

Each checks its input here, in the caller, so a typo fails at once with a
message naming it (an unknown task name, a rate that does not parse, a
queue name that cannot be one) instead of timing out, then sends one request
(control/remote.py) and returns the ``Replies``: what each worker answered
and which expected worker did not reply within the timeout.

``destination`` is a worker's hostname (``taskq@web1``, or its ``-n``) or its
full name, or a list of them; None asks every online worker. Rate and time
limits have no destination: they are kept in Redis for every worker
(control/limits.py), because a rate limit is one token bucket per task
shared by the whole cluster.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.control import limits
from django_taskq.control.errors import BadRequest
from django_taskq.control.remote import Destination, Replies, call


# -- inspect ------------------------------------------------------------------------
def ping(*, destination: Destination = None, timeout: float | None = None) -> Replies:
    """Ask workers to answer ``pong``: which are alive and listening."""
    return call("ping", destination=destination, timeout=timeout)


def active(*, destination: Destination = None, timeout: float | None = None) -> Replies:
    """The tasks each worker runs now: id, name, args, kwargs, start time and runtime."""
    return call("active", destination=destination, timeout=timeout)


def reserved(*, destination: Destination = None, timeout: float | None = None) -> Replies:
    """Messages each worker has fetched and not started yet (its consumers' pending ones)."""
    return call("reserved", destination=destination, timeout=timeout)


def scheduled(
    limit: int = 100, *, destination: Destination = None, timeout: float | None = None
) -> Replies:
    """The delayed messages (ETA, countdown, retry) of each worker's queues, soonest first.

    Delayed messages belong to their queue, not to a worker (any worker of
    the queue runs them when due), so two workers of one queue list the
    same ones; at most ``limit`` per queue.
    """
    return call(
        "scheduled",
        {"limit": _positive_int(limit, "limit")},
        destination=destination,
        timeout=timeout,
    )


def registered(*, destination: Destination = None, timeout: float | None = None) -> Replies:
    """The task names each worker has registered, with their rate and time limits."""
    return call("registered", destination=destination, timeout=timeout)


def stats(*, destination: Destination = None, timeout: float | None = None) -> Replies:
    """Each worker's numbers: pool, concurrency, queues, uptime, counts, load, memory."""
    return call("stats", destination=destination, timeout=timeout)


def query_task(
    task_ids: Iterable[str], *, destination: Destination = None, timeout: float | None = None
) -> Replies:
    """Where each of ``task_ids`` is on each worker: running now (active) or fetched (reserved)."""
    ids = [str(i).strip() for i in task_ids if str(i).strip()]
    if not ids:
        raise BadRequest("query_task needs at least one task id")
    return call("query_task", {"ids": ids}, destination=destination, timeout=timeout)


# -- control ------------------------------------------------------------------------
@translating_errors("set a rate limit")
def rate_limit(
    task: str,
    rate: str | float | None,
    *,
    reset: bool = False,
    timeout: float | None = None,
) -> Replies:
    """Change ``task``'s rate limit on every worker, now and for workers started later.

    ``rate`` is ``"N/s"``, ``"N/m"``, ``"N/h"`` or a number per second; 0 or
    None runs the task without a limit; ``reset=True`` goes back to the rate
    it was declared with. The limit holds across the whole cluster (one
    token bucket per task), not per worker as in Celery.
    """
    check_task(task)
    client = get_broker()
    if reset:
        limits.reset(client, limits.RATE, task)
    else:
        limits.set_rate(client, task, _rate(task, rate))
    return call("rate_limit", {"task": task}, timeout=timeout)


@translating_errors("set a time limit")
def time_limit(
    task: str,
    soft: float | None = None,
    hard: float | None = None,
    *,
    reset: bool = False,
    timeout: float | None = None,
) -> Replies:
    """Change ``task``'s soft and hard time limits (seconds) on every worker.

    None leaves that limit to the worker's default (``--time-limit``,
    ``--soft-time-limit``), which is no limit unless one is set. Prefork
    children apply them from their next task, workers started later at
    start. They replace the limits a message carries, including ones given
    to ``apply_async()``. ``reset=True`` goes back to the limits each
    message carries.
    """
    check_task(task)
    client = get_broker()
    if reset:
        limits.reset(client, limits.TIME, task)
    else:
        soft_s = _seconds(soft, "soft")
        hard_s = _seconds(hard, "hard")
        if soft_s is not None and hard_s is not None and soft_s > hard_s:
            raise BadRequest(
                f"the soft time limit ({soft_s:g}s) must not exceed the hard one ({hard_s:g}s): "
                "the hard limit would kill the task before the soft one warns it"
            )
        limits.set_time(client, task, soft_s, hard_s)
    return call("time_limit", {"task": task}, timeout=timeout)


def shutdown(*, destination: Destination = None, timeout: float | None = None) -> Replies:
    """Warm shutdown: workers stop fetching, finish their running tasks and exit."""
    return call("shutdown", destination=destination, timeout=timeout)


def pool_grow(
    n: int = 1, *, destination: Destination = None, timeout: float | None = None
) -> Replies:
    """Start ``n`` more child processes in each prefork worker."""
    return call("pool_grow", {"n": _positive_int(n, "n")}, destination=destination, timeout=timeout)


def pool_shrink(
    n: int = 1, *, destination: Destination = None, timeout: float | None = None
) -> Replies:
    """Stop ``n`` child processes of each prefork worker after their task (never the last one)."""
    return call(
        "pool_shrink", {"n": _positive_int(n, "n")}, destination=destination, timeout=timeout
    )


def add_consumer(
    queue: str, *, destination: Destination = None, timeout: float | None = None
) -> Replies:
    """Make workers consume ``queue`` too (after their other queues)."""
    keys.check_queue_name(queue, "add_consumer")
    return call("add_consumer", {"queue": queue}, destination=destination, timeout=timeout)


def cancel_consumer(
    queue: str, *, destination: Destination = None, timeout: float | None = None
) -> Replies:
    """Make workers stop consuming ``queue`` (a worker keeps at least one queue)."""
    keys.check_queue_name(queue, "cancel_consumer")
    return call("cancel_consumer", {"queue": queue}, destination=destination, timeout=timeout)


# -- input checks -------------------------------------------------------------------
def check_task(task: str) -> None:
    """Refuse a task name that neither a worker nor this process has registered."""
    from django_taskq.monitor.workers import registered_task_names
    from django_taskq.registry import registry

    known = registered_task_names() | set(registry.names(include_internal=True))
    if task in known:
        return
    close = difflib.get_close_matches(task, sorted(known), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise BadRequest(
        f"no worker has registered a task named {task!r}, and this process does not know it "
        f"either: check the name (taskq_inspect registered lists them).{hint}"
    )


def _rate(task: str, rate: str | float | None) -> str | None:
    """``rate`` checked and as stored; None for no limit."""
    from django_taskq.ratelimit import parse_rate

    if rate is None or (isinstance(rate, int | float) and rate == 0):
        return None
    text = str(rate).strip()
    if text in ("0", "0/s", "0/m", "0/h"):
        return None
    try:
        parse_rate(rate if isinstance(rate, int | float) else text, task)
    except ValueError as exc:
        raise BadRequest(f"{exc} (or 0 for no limit)") from None
    return text


def _seconds(value: Any, which: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadRequest(
            f"the {which} time limit must be a number of seconds or None, not {value!r}"
        ) from None
    if seconds <= 0:
        raise BadRequest(
            f"the {which} time limit must be positive, not {value!r} (None: the worker's default)"
        )
    return seconds


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name} must be a whole number of 1 or more, not {value!r}")
    return value


__all__ = [
    "active",
    "add_consumer",
    "cancel_consumer",
    "check_task",
    "ping",
    "pool_grow",
    "pool_shrink",
    "query_task",
    "rate_limit",
    "registered",
    "reserved",
    "scheduled",
    "shutdown",
    "stats",
    "time_limit",
]
