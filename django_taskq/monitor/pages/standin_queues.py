"""STAND-IN for ``django_taskq.monitor.queues`` (h2-queues-metrics), until it is merged.

The API is the one in /work/plan/CONTRACTS.md, so the pages need only a
different import in ``pages/sources.py`` once the real module exists; this
file is then deleted. It reads the same keys the real one will, simply:
it is here so the pages can be built and tested against real Redis data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.control import known_queues
from django_taskq.messages import loads


@dataclass(frozen=True)
class PriorityStats:
    priority: int
    ready: int
    in_flight: int


@dataclass(frozen=True)
class QueueStats:
    name: str
    ready: int
    in_flight: int
    delayed: int
    dead: int
    oldest_age: float | None
    next_eta: float | None
    consumers: dict[str, int]
    priorities: list[PriorityStats]


@dataclass(frozen=True)
class QueuedMessage:
    task_id: str
    task: str
    args: str
    kwargs: str
    priority: int
    eta: float | None
    entry_id: str | None


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _ms(entry_id: str) -> float | None:
    head = entry_id.partition("-")[0]
    return int(head) / 1000 if head.isdigit() else None


UNREADABLE = "(unreadable)"


@dataclass(frozen=True)
class Shown:
    task_id: str
    task: str
    args: str
    kwargs: str


def describe(raw_id: Any, body: Any) -> Shown:
    """Stand-in for ``monitor.display.describe``: never raises."""
    task_id = _s(raw_id) if raw_id else ""
    try:
        data = loads(body)
        task = data["task"]
        assert isinstance(task, str) and task
        return Shown(
            task_id or str(data.get("id", "")),
            task,
            repr(data.get("args", []))[:500],
            repr(data.get("kwargs", {}))[:500],
        )
    except Exception:
        return Shown(task_id, UNREADABLE, "body is not a message: " + repr(_s(body)[:120]), "")


@translating_errors("read queue counts")
def queue_stats(queues: list[str] | None = None) -> list[QueueStats]:
    client: Any = get_broker()
    names = sorted(queues) if queues is not None else known_queues()
    out = []
    now = time.time()
    for queue in names:
        pipe = client.pipeline(transaction=False)
        for stream in keys.queue_streams(queue):
            pipe.xlen(stream)
            pipe.xpending(stream, keys.GROUP)
            pipe.xinfo_groups(stream)
        pipe.zcard(keys.delayed(queue))
        pipe.zrange(keys.delayed(queue), 0, 0, withscores=True)
        pipe.xlen(keys.dead(queue))
        replies = pipe.execute(raise_on_error=False)
        priorities: list[PriorityStats] = []
        consumers: dict[str, int] = {}
        oldest: float | None = None
        for index, priority in enumerate(keys.PRIORITIES):
            length, pending, groups = replies[3 * index : 3 * index + 3]
            length = 0 if isinstance(length, Exception) else int(length)
            held = 0
            if not isinstance(pending, Exception) and pending:
                held = int(pending.get("pending") or 0)
                for consumer in pending.get("consumers") or []:
                    name = _s(consumer.get("name"))
                    consumers[name] = consumers.get(name, 0) + int(consumer.get("pending", 0))
            last = ""
            if not isinstance(groups, Exception):
                for group in groups:
                    if _s(group.get("name")) == keys.GROUP:
                        last = _s(group.get("last-delivered-id"))
            ready = max(length - held, 0)
            if ready:
                first = client.xrange(keys.stream(queue, priority), f"({last or '0-0'}", count=1)
                if first:
                    at = _ms(_s(first[0][0]))
                    if at is not None:
                        oldest = max(oldest or 0.0, now - at)
            if ready or held:
                priorities.append(PriorityStats(priority, ready, held))
        delayed, first_delayed, dead = replies[-3:]
        next_eta = None
        if not isinstance(first_delayed, Exception) and first_delayed:
            next_eta = float(first_delayed[0][1]) / 1000
        out.append(
            QueueStats(
                name=queue,
                ready=sum(p.ready for p in priorities),
                in_flight=sum(p.in_flight for p in priorities),
                delayed=0 if isinstance(delayed, Exception) else int(delayed),
                dead=0 if isinstance(dead, Exception) else int(dead),
                oldest_age=oldest,
                next_eta=next_eta,
                consumers=consumers,
                priorities=priorities,
            )
        )
    return out


def _message(raw_id: Any, body: Any, priority: int, eta: float | None, entry: str | None) -> Any:
    shown = describe(raw_id, body)
    return QueuedMessage(shown.task_id, shown.task, shown.args, shown.kwargs, priority, eta, entry)


@translating_errors("peek at a queue")
def peek(queue: str, limit: int = 50, delayed: bool = False) -> list[QueuedMessage]:
    client: Any = get_broker()
    out: list[QueuedMessage] = []
    if delayed:
        for member, score in client.zrange(keys.delayed(queue), 0, limit - 1, withscores=True):
            head, _, rest = _s(member).partition("\n")
            task_id, _, body = rest.partition("\n")
            out.append(
                _message(task_id, body, int(head) if head.isdigit() else 0, score / 1000, None)
            )
        return out
    for priority in keys.PRIORITIES:
        stream = keys.stream(queue, priority)
        last = "0-0"
        try:
            for group in client.xinfo_groups(stream):
                if _s(group.get("name")) == keys.GROUP:
                    last = _s(group.get("last-delivered-id"))
        except Exception:
            pass
        for entry_id, fields in client.xrange(stream, f"({last}", count=limit - len(out)):
            out.append(
                _message(
                    _s(fields.get(b"i", b"")), fields.get(b"b", b""), priority, None, _s(entry_id)
                )
            )
        if len(out) >= limit:
            break
    return out
