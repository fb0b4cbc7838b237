"""Live queue state, read from Redis: what waits, what runs, what is delayed or dead.

``queue_stats()`` is what the admin's queues page, ``inspect()`` and the
Prometheus gauges show; ``peek()`` lists the first messages of a queue. Both
read Redis only (no database), enumerate queues from the registry set
(never KEYS or SCAN), and change nothing.

A queue's numbers, per priority stream:

- **ready**: entries after the consumer group's last-delivered id, which no
  consumer has fetched yet (length minus pending: an entry leaves the
  stream when it is acked, so what remains is either pending or ready);
- **in flight**: the group's pending entries, fetched by a consumer and not
  acked (running, or prefetched to run next), per consumer;
- **delayed**: members of the queue's delayed set (ETA, countdown, retry
  delay), with the earliest due time;
- **dead**: entries of the queue's dead-letter stream.

``queue_stats()`` costs one ``queue_stats.lua`` call per queue, all in one
pipeline: one round trip for a hundred queues, cheap enough for every page
refresh and every scrape. Ages are measured on the Redis server's clock
(entry ids are its milliseconds), so a web server whose clock is off does
not show negative waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_taskq.broker import keys, scripts
from django_taskq.broker import queues as registry
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.broker.publish import run_pipeline
from django_taskq.monitor.display import Shown, describe, text, unreadable


@dataclass(frozen=True)
class PriorityStats:
    """The ready and in-flight messages of one priority of a queue."""

    priority: int
    ready: int
    in_flight: int


@dataclass(frozen=True)
class QueueStats:
    """One queue's live counts (see the module docstring for what each means)."""

    name: str
    ready: int
    in_flight: int
    delayed: int
    dead: int
    #: Seconds the oldest ready message has waited (since it became ready); None: none ready.
    oldest_age: float | None
    #: Epoch seconds of the earliest delayed message; None: nothing delayed.
    next_eta: float | None
    #: Consumer name -> messages it holds (pending), over the queue's streams.
    consumers: dict[str, int]
    #: Only priorities with anything ready or in flight, 9 (runs first) first.
    priorities: list[PriorityStats]


@dataclass(frozen=True)
class QueuedMessage:
    """One waiting message as a person sees it (``task`` is UNREADABLE when it cannot be read)."""

    task_id: str
    task: str
    args: str
    kwargs: str
    priority: int
    #: Due time (epoch seconds) of a delayed message; None for a ready one.
    eta: float | None
    #: Stream entry id of a ready message; None for a delayed one.
    entry_id: str | None
    #: The body's serializer and compression (``"msgpack+zlib"``; ``"json"`` when plain).
    content: str = "json"


def _queue_names(queues: list[str] | None, client: Any) -> list[str]:
    if queues is None:
        # A registry member that could not be a queue name was not written by us.
        return [q for q in registry.known(client) if keys.QUEUE_NAME.match(q)]
    return [keys.check_queue_name(q, "queue_stats()") for q in queues]


@translating_errors("read queue counts")
def queue_stats(queues: list[str] | None = None) -> list[QueueStats]:
    """Live counts of ``queues`` (default: every registered queue, by name), in their order."""
    client = get_broker()
    names = _queue_names(queues, client)
    if not names:
        return []

    def build(pipe: Any) -> None:
        for queue in names:
            scripts.queue_evalsha(
                pipe,
                client,
                "queue_stats",
                [keys.delayed(queue), keys.dead(queue), *keys.queue_streams(queue)],
                [keys.GROUP],
            )

    replies = run_pipeline(client, build)
    return [_parse(queue, reply) for queue, reply in zip(names, replies, strict=True)]


def _parse(queue: str, reply: list[Any]) -> QueueStats:
    """A QueueStats from queue_stats.lua's flat reply (streams in keys.PRIORITIES order)."""
    items = iter(reply)
    server_ms = _number(next(items))
    delayed = int(_number(next(items)))
    first_due = _number(next(items))
    dead = int(_number(next(items)))
    ready = in_flight = 0
    oldest_ms: float | None = None
    consumers: dict[str, int] = {}
    priorities: list[PriorityStats] = []
    for priority in keys.PRIORITIES:
        length = int(_number(next(items)))
        pending = int(_number(next(items)))
        first_ready = _entry_ms(next(items))
        for _ in range(int(_number(next(items)))):
            name = text(next(items), 500)
            consumers[name] = consumers.get(name, 0) + int(_number(next(items)))
        # Fewer entries than pending: pending entries were deleted, which leaves none ready.
        stream_ready = max(0, length - pending)
        ready += stream_ready
        in_flight += pending
        if stream_ready or pending:
            priorities.append(PriorityStats(priority, stream_ready, pending))
        if first_ready is not None and stream_ready:
            oldest_ms = first_ready if oldest_ms is None else min(oldest_ms, first_ready)
    return QueueStats(
        name=queue,
        ready=ready,
        in_flight=in_flight,
        delayed=delayed,
        dead=dead,
        oldest_age=None if oldest_ms is None else max(0.0, (server_ms - oldest_ms) / 1000),
        next_eta=first_due / 1000 if first_due >= 0 else None,
        consumers=consumers,
        priorities=priorities,
    )


def _number(value: Any) -> float:
    try:
        return float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError):
        return 0.0


def _entry_ms(value: Any) -> float | None:
    """The milliseconds part of a stream entry id (b"1700000000000-3"), None for ""."""
    if not value:
        return None
    ms, _, _ = text(value, 64).partition("-")
    try:
        return float(ms)
    except ValueError:
        return None


@translating_errors("read a queue's messages")
def peek(queue: str, limit: int = 50, delayed: bool = False) -> list[QueuedMessage]:
    """The first ``limit`` ready messages of ``queue`` (priority 9 first, oldest first).

    With ``delayed=True``, the first ``limit`` delayed messages instead,
    earliest due first. Messages already fetched by a consumer (in flight)
    are not listed. An entry that cannot be read is listed with the task
    UNREADABLE and the reason in ``args``; nothing here raises on what a
    stream holds.
    """
    keys.check_queue_name(queue, "peek()")
    if limit <= 0:
        return []
    client: Any = get_broker()
    if delayed:
        members = client.zrange(keys.delayed(queue), 0, limit - 1, withscores=True)
        return [_delayed_message(member, score) for member, score in members]
    streams = keys.queue_streams(queue)
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xlen(stream)
        pipe.xinfo_groups(stream)
    replies = pipe.execute(raise_on_error=False)
    out: list[QueuedMessage] = []
    for index, (priority, stream) in enumerate(zip(keys.PRIORITIES, streams, strict=True)):
        length, groups = replies[2 * index], replies[2 * index + 1]
        if isinstance(length, Exception):  # a key of another type where a stream should be
            out.append(_message(priority, None, unreadable("", f"not a stream: {length}")))
            continue
        if not length:
            continue
        last = _last_delivered(groups)
        start = f"({last}" if last else "-"
        entries = client.xrange(stream, start, "+", count=limit - len(out))
        for entry_id, fields in entries:
            fields = fields if isinstance(fields, dict) else {}
            shown = describe(fields.get(b"i"), fields.get(b"b"))
            out.append(_message(priority, text(entry_id, 64), shown))
        if len(out) >= limit:
            break
    return out[:limit]


def _last_delivered(groups: Any) -> str | None:
    """The consumer group's last-delivered id from an XINFO GROUPS reply (None: no group)."""
    if isinstance(groups, Exception):
        return None
    for group in groups or []:
        info = {text(k): v for k, v in dict(group).items()}
        if text(info.get("name", "")) == keys.GROUP:
            last = info.get("last-delivered-id")
            return text(last, 64) if last else None
    return None


def _message(
    priority: int, entry_id: str | None, shown: Shown, eta: float | None = None
) -> QueuedMessage:
    return QueuedMessage(
        task_id=shown.task_id,
        task=shown.task,
        args=shown.args,
        kwargs=shown.kwargs,
        priority=priority,
        eta=eta,
        entry_id=entry_id,
        content=shown.content,
    )


def _delayed_message(member: Any, score: Any) -> QueuedMessage:
    """A delayed set member, ``<priority>\\n<task id>\\n<body>``, as shown."""
    raw = member if isinstance(member, bytes) else str(member).encode()
    eta = _number(score) / 1000
    parts = raw.split(b"\n", 2)
    priority_text = parts[0].decode(errors="replace").strip()
    if len(parts) == 3 and priority_text.isdigit() and 0 <= int(priority_text) <= 9:
        return _message(int(priority_text), None, describe(parts[1], parts[2]), eta)
    shown = unreadable("", "delayed member is not priority, id and body", raw)
    return _message(0, None, shown, eta)
