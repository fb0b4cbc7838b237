"""Where the live pages get their data: the one module that calls the readers of Redis.

The pages never read Redis keys themselves. They call the siblings' readers
(``monitor.queues``, ``monitor.workers``, ``control``, ``metrics.counters``)
through the names below, so the page code is the same whichever of those
is merged, and a reader's change touches one import here.

STAND-IN: ``dead_letter_page`` below pages through dead letters with a
cursor, which ``control.dead_letters`` (newest N only) does not offer; it
becomes a call of the control package once that takes a cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django_taskq import control
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.control import Replies
from django_taskq.control.dead import ENTRY_ID
from django_taskq.metrics import counters
from django_taskq.monitor.display import UNREADABLE, Shown, describe
from django_taskq.monitor.queues import QueuedMessage, QueueStats, peek, queue_stats
from django_taskq.monitor.workers import RunningTask, WorkerState, workers

__all__ = [
    "ENTRY_ID",
    "UNREADABLE",
    "DeadLetterPage",
    "QueueStats",
    "QueuedMessage",
    "Replies",
    "RunningTask",
    "Shown",
    "WorkerState",
    "dead_letter_page",
    "delete_dead",
    "describe",
    "known_queues",
    "metrics_snapshot",
    "peek",
    "pool_resize",
    "purge",
    "queue_stats",
    "requeue_dead",
    "requeue_refusals",
    "shutdown_worker",
    "throughput",
    "workers",
]


def known_queues() -> list[str]:
    """Every queue the registry knows (``control.known_queues``)."""
    return control.known_queues()


def purge(queue: str) -> int:
    """Delete a queue's waiting and delayed messages (``control.purge``); how many."""
    return control.purge([queue])


def requeue_dead(entries: Iterable[tuple[str, str]]) -> int:
    """Put the dead letters ``(queue, entry id)`` back on their queues; how many moved."""
    return sum(control.requeue_dead(ids, queue=q) for q, ids in _by_queue(entries).items())


def requeue_refusals(entries: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(queue, entry id) -> why requeueing that dead letter would only dead-letter it again."""
    return {
        (q, entry_id): reason
        for q, ids in _by_queue(entries).items()
        for entry_id, reason in control.requeue_refusals(ids, queue=q).items()
    }


def delete_dead(entries: Iterable[tuple[str, str]]) -> int:
    """Delete the dead letters ``(queue, entry id)``; how many were there."""
    return sum(control.delete_dead(ids, queue=q) for q, ids in _by_queue(entries).items())


def shutdown_worker(name: str) -> Replies:
    """Ask one worker (by full name) for a warm shutdown; its reply, or that it gave none."""
    return control.shutdown(destination=name)


def pool_resize(name: str, delta: int) -> Replies:
    """Grow (``delta`` > 0) or shrink a prefork worker's pool by ``abs(delta)`` processes."""
    if delta > 0:
        return control.pool_grow(delta, destination=name)
    return control.pool_shrink(-delta, destination=name)


def _by_queue(entries: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for queue, entry_id in entries:
        out.setdefault(queue, []).append(entry_id)
    return out


@dataclass(frozen=True)
class DeadLetterPage:
    """One page of dead letters, newest first, and the cursor of the next (older) page."""

    #: Each entry's fields as text, but ``b`` (the body) as Redis holds it: a
    #: msgpack or compressed body is bytes, and text would break it.
    rows: list[dict[str, Any]]
    next_cursor: str | None


@translating_errors("read dead letters")
def dead_letter_page(queues: list[str], count: int, before: str | None = None) -> DeadLetterPage:
    """Up to ``count`` dead letters of ``queues`` older than ``before``, newest first.

    STAND-IN for a paging ``control.dead_letters`` (h3). ``before`` is the
    cursor a previous page returned, ``"<entry id> <queue>"``: pages read
    ``count + 1`` entries per queue at most, never a whole stream. Entries
    of several queues are ordered by id, then queue name (ids can tie).
    """
    client: Any = get_broker()
    cursor = _parse_cursor(before)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        end = "+"
        if cursor is not None:
            cursor_id, cursor_queue = cursor
            end = cursor_id if queue < cursor_queue else f"({cursor_id}"
        pipe.xrevrange(keys.dead(queue), end, "-", count=count + 1)
    rows = []
    for queue, entries in zip(queues, pipe.execute(), strict=True):
        for entry_id, fields in entries:
            row: dict[str, Any] = {_s(k): _s(v) for k, v in fields.items() if k != b"b"}
            row["b"] = fields.get(b"b")
            row["entry_id"] = _s(entry_id)
            row["queue"] = queue
            rows.append(row)
    rows.sort(key=lambda r: (_order(r["entry_id"]), r["queue"]), reverse=True)
    page = rows[:count]
    more = len(rows) > count
    next_cursor = f"{page[-1]['entry_id']} {page[-1]['queue']}" if more and page else None
    return DeadLetterPage(page, next_cursor)


def _parse_cursor(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    entry_id, _, queue = value.partition(" ")
    if not ENTRY_ID.match(entry_id) or not keys.QUEUE_NAME.match(queue):
        return None
    return entry_id, queue


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq)) if ENTRY_ID.match(entry_id) else (0, 0)


@translating_errors("read the task counters")
def metrics_snapshot(queues: list[str]) -> counters.Snapshot:
    """Every counter and histogram of ``queues`` (``metrics.counters.read``)."""
    return counters.read(get_broker(), queues)


@translating_errors("read the throughput")
def throughput(queues: list[str], minutes: int = 60) -> list[tuple[int, dict[str, int]]]:
    """Endings per minute over the last ``minutes`` (``metrics.counters.throughput``)."""
    return counters.throughput(get_broker(), queues, minutes)


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
