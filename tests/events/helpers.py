"""Read a queue's events stream as the recorder would, and wait on it with XREAD BLOCK."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django_taskq import events
from django_taskq.broker import keys

Event = dict[str, Any]


def read_events(client: Any, queue: str = "default") -> list[Event]:
    """Every event of ``queue``'s stream, oldest first (each with its entry's worker)."""
    found: list[Event] = []
    for _entry_id, fields in client.xrange(keys.events(queue)):
        found += events.decode_entry(fields)
    return found


def wait_for(
    client: Any,
    done: Callable[[list[Event]], bool],
    queue: str = "default",
    timeout: float = 15.0,
) -> list[Event]:
    """Block on ``queue``'s events stream until ``done(all events so far)``; returns them."""
    deadline = time.monotonic() + timeout
    stream = keys.events(queue)
    last = "0-0"
    seen: list[Event] = []
    while True:
        left = deadline - time.monotonic()
        if done(seen):
            return seen
        if left <= 0:
            raise AssertionError(f"the events never got there; seen: {seen}")
        reply = client.xread({stream: last}, block=max(1, int(min(left, 1.0) * 1000)))
        for _name, entries in _entries(reply):
            for entry_id, fields in entries:
                last = entry_id
                seen += events.decode_entry(fields)


def wait_dead_letters(
    client: Any, count: int, queue: str = "default", timeout: float = 15.0
) -> None:
    """Block until ``queue`` holds ``count`` dead letters (woken by each new one).

    A refused message's FAILURE result is stored before the flush's
    barrier and its dead letter after it: on Redis Cluster, where the two
    live on different nodes, ``get()`` can return a round trip before the
    dead letter is there.
    """
    stream, deadline = keys.dead(queue), time.monotonic() + timeout
    while client.xlen(stream) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{queue} holds {client.xlen(stream)} dead letters, not {count}")
        client.xread({stream: "$"}, block=max(1, int(min(left, 0.2) * 1000)))


def _entries(reply: Any) -> list[tuple[Any, list[Any]]]:
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3 or a Cluster client
        return list(reply.items())
    return [(name, entries) for name, entries in reply]


def of(found: list[Event], task_id: str, kind: str | None = None) -> list[Event]:
    """The events of ``task_id`` (of ``kind``), in order."""
    return [e for e in found if e["id"] == task_id and (kind is None or e["k"] == kind)]


def has(task_id: str, *kinds: str) -> Callable[[list[Event]], bool]:
    """A ``done`` for wait_for: every one of ``kinds`` was seen for ``task_id``."""
    return lambda found: all(of(found, task_id, kind) for kind in kinds)


def one(found: list[Event], task_id: str, kind: str) -> Event:
    [event] = of(found, task_id, kind)
    return event
