"""Queues from outside a worker: which exist, their counts, purging them, the overview."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django_taskq.broker import keys, scripts
from django_taskq.broker import queues as queue_registry
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.monitor.queues import QueueStats
from django_taskq.monitor.queues import queue_stats as live_queue_stats


@translating_errors("list queues")
def known_queues() -> list[str]:
    """Every queue in the registry: published to, or consumed by a worker, lately."""
    return queue_registry.known(get_broker())


@translating_errors("look the queues up")
def unknown_queues(names: Iterable[str]) -> list[str]:
    """The ``names`` that are no queue: not in the registry and holding no message.

    A queue is registered when a message is published to it or a worker
    consumes it; a name that is neither is a typo, or a queue forgotten after
    TASKQ_QUEUE_FORGET_AFTER of disuse. Checking its keys as well means a
    queue whose registration was lost (Redis restored from an old dump) is
    still found.
    """
    client: Any = get_broker()
    wanted = [keys.check_queue_name(q, "queue") for q in dict.fromkeys(names)]
    registered = set(queue_registry.known(client))
    candidates = [q for q in wanted if q not in registered]
    if not candidates:
        return []
    pipe = client.pipeline(transaction=False)
    for queue in candidates:
        pipe.exists(*queue_registry.queue_keys(queue))
    return [q for q, n in zip(candidates, pipe.execute(), strict=True) if not int(n)]


@translating_errors("purge queues")
def purge(queues: Iterable[str] | None = None) -> int:
    """Delete every waiting (not running) message of ``queues`` (default: all); returns how many."""
    return sum(purge_counts(queues).values())


@translating_errors("purge queues")
def purge_counts(queues: Iterable[str] | None = None) -> dict[str, int]:
    """Like ``purge()``, with how many messages each queue lost.

    Ready messages no consumer has fetched yet and delayed ones go; messages
    a worker has fetched (running, or about to run) stay, as do dead letters
    (``delete_dead()`` deletes those). Each queue is one atomic step
    (purge.lua), so a message fetched at that moment is either delivered or
    purged, never both.
    """
    client: Any = get_broker()
    names = list(dict.fromkeys(queues)) if queues is not None else known_queues()
    for queue in names:
        keys.check_queue_name(queue, "purge")
    purge_script = scripts.script(client, "purge")
    removed: dict[str, int] = {}
    for queue in names:
        removed[queue] = int(
            purge_script(
                keys=[keys.delayed(queue), *keys.queue_streams(queue)],
                args=[keys.GROUP],
                client=client,
            )
        )
    return removed


def queue_stats(client: Any, queue: str) -> dict[str, int]:
    """Waiting, running (fetched, not acked), delayed and dead messages of one queue.

    The numbers of ``monitor.queues.queue_stats()`` (``client`` is unused:
    kept for callers of the old signature).
    """
    return _counts(live_queue_stats([queue])[0])


def _counts(stats: QueueStats) -> dict[str, int]:
    return {
        "waiting": stats.ready,
        "running": stats.in_flight,
        "delayed": stats.delayed,
        "dead": stats.dead,
    }


@translating_errors("list workers")
def workers(client: Any = None) -> list[dict[str, Any]]:
    """Every worker still remembered, as plain data, ``online`` or not.

    Kept for code written against django_taskq 0.1 (``client`` is accepted
    and not needed); ``monitor.workers.workers()`` returns the same as
    ``WorkerState`` values.
    """
    from django_taskq.monitor.workers import workers as worker_states

    return [state.as_dict() for state in worker_states()]


@translating_errors("inspect queues and workers")
def inspect() -> dict[str, Any]:
    """Queues (waiting, running, delayed, dead), online workers and totals, for humans.

    Read from Redis alone: it asks no worker anything (``taskq_inspect``
    without a subcommand prints it).
    """
    from django_taskq.monitor.workers import workers

    out: dict[str, Any] = {"queues": {}, "workers": [], "dead_letters": 0, "delayed": 0}
    for stats in live_queue_stats():
        out["queues"][stats.name] = _counts(stats)
        out["delayed"] += stats.delayed
        out["dead_letters"] += stats.dead
    out["workers"] = [w.as_dict() for w in workers(include_offline=False)]
    return out
