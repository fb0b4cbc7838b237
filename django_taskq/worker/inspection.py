"""What a worker reports about its work when asked (taskq_inspect): reads only.

Running tasks come from the worker itself (a prefork parent reads its
children's shared-memory slots; solo and threads read their consumers).
What a worker has fetched and not started is the truth Redis holds: the
consumer group's pending entries of the worker's consumers, minus those
running now, so a prefork child's prefetched batch is seen without asking
the child. Delayed messages belong to their queue, not to a worker: a
worker lists those of the queues it consumes.
"""

from __future__ import annotations

import reprlib
import time
from dataclasses import dataclass
from typing import Any

from django_taskq.broker import keys
from django_taskq.codecs import SAFE
from django_taskq.messages import Envelope

#: Most pending entries read per consumer and stream.
RESERVED_LIMIT = 1000
_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200


@dataclass(frozen=True)
class Running:
    """A task a consumer of this worker runs now, and where its message is."""

    task_id: str
    task: str
    started: float  # epoch seconds
    stream: str
    entry_id: str

    def summary(self) -> dict[str, Any]:
        """What the heartbeat's description lists (kept small: it is written every beat)."""
        return {"task_id": self.task_id, "task": self.task, "started": self.started}


def active(client: Any, running: list[Running]) -> list[dict[str, Any]]:
    """The running tasks with their arguments (read from their stream entries) and runtime."""
    bodies = _bodies(client, [(r.stream, r.entry_id) for r in running])
    now = time.time()
    out = []
    for item, body in zip(running, bodies, strict=True):
        row = _message_fields(body)
        row.update(item.summary(), queue=keys.queue_of(item.stream)[0], entry_id=item.entry_id)
        row["runtime"] = round(max(0.0, now - item.started), 3)
        out.append(row)
    return out


def reserved(
    client: Any, consumers: list[str], queues: list[str], running: list[Running]
) -> list[dict[str, Any]]:
    """Messages the ``consumers`` have fetched and not started: pending, minus running ones."""
    streams = keys.streams_for(queues)
    if not consumers or not streams:
        return []
    pipe = client.pipeline(transaction=False)
    asked = []
    for stream in streams:
        for consumer in consumers:
            pipe.xpending_range(
                stream, keys.GROUP, min="-", max="+", count=RESERVED_LIMIT, consumername=consumer
            )
            asked.append((stream, consumer))
    started = {(r.stream, r.entry_id) for r in running}
    pending: list[tuple[str, str, str, int]] = []
    for (stream, consumer), reply in zip(asked, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, Exception):
            continue  # no group on that stream yet
        for entry in reply:
            entry_id = _s(entry.get("message_id", ""))
            if (stream, entry_id) not in started:
                pending.append((stream, entry_id, consumer, int(entry.get("times_delivered", 1))))
    bodies = _bodies(client, [(stream, entry_id) for stream, entry_id, _, _ in pending])
    out = []
    for (stream, entry_id, consumer, _), body in zip(pending, bodies, strict=True):
        row = _message_fields(body)
        row.update(queue=keys.queue_of(stream)[0], entry_id=entry_id, consumer=consumer)
        out.append(row)
    return out


def scheduled(client: Any, queues: list[str], limit: int) -> dict[str, list[dict[str, Any]]]:
    """queue -> its soonest ``limit`` delayed messages (task id, name, eta, priority, args)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrange(keys.delayed(queue), 0, limit - 1, withscores=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for queue, members in zip(queues, pipe.execute(), strict=True):
        rows = []
        for member, score in members:
            priority, _, rest = bytes(member).partition(b"\n")
            task_id, _, body = rest.partition(b"\n")
            row = _message_fields(body)
            row.update(task_id=_s(task_id), eta=float(score) / 1000, priority=_int(priority))
            rows.append(row)
        out[queue] = rows
    return out


def _bodies(client: Any, entries: list[tuple[str, str]]) -> list[bytes | None]:
    """The ``b`` field of each (stream, entry id), None for an entry gone meanwhile."""
    if not entries:
        return []
    pipe = client.pipeline(transaction=False)
    for stream, entry_id in entries:
        pipe.xrange(stream, entry_id, entry_id)
    out: list[bytes | None] = []
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, Exception) or not reply:
            out.append(None)
        else:
            out.append(reply[0][1].get(b"b"))
    return out


def _message_fields(body: bytes | None) -> dict[str, Any]:
    """Task id, name, args and kwargs (as short reprs) of a message body, as far as it reads."""
    if body is None:
        return {"task_id": "", "task": "?", "args": "", "kwargs": ""}
    try:
        envelope = Envelope.decode(body, accept=SAFE)  # never pickle: it runs code
    except Exception:
        return {"task_id": "", "task": "?", "args": "?", "kwargs": "?"}
    return {
        "task_id": envelope.id,
        "task": envelope.task,
        "args": _repr.repr(envelope.args),
        "kwargs": _repr.repr(envelope.kwargs),
        "priority": envelope.priority,
        "eta": envelope.eta,
    }


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
