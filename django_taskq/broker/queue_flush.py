"""One queue's share of a worker flush, as one settle.lua call.

A worker flush ends a batch of messages. Per queue it acks them (XACK and
XDEL of each stream), adds the batch's counters and histograms
(metrics/counters.py) and appends the batch's events (events.py). Those
were four commands per queue; as one script call they are one, and the
flush's telemetry costs the worker about no command of its own
(docs/benchmarks.md, "Task events and history on and off").

The script acks first, with ``redis.call``; the counters and the events
use ``redis.pcall``, so a key of the wrong type among them cannot stop the
acks, and their errors come back in the reply (``errors``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from django_taskq.broker import keys, scripts

#: Seconds a minute's throughput hash lives (the dashboard shows one hour).
THROUGHPUT_TTL = 7200


def queue_settle(
    pipe: Any,
    client: redis.Redis,
    queue: str,
    *,
    acks: dict[str, list[str]] | None = None,
    counters: Sequence[str] = (),
    endings: Sequence[str] = (),
    entries: Sequence[str] = (),
    worker: str = "",
    maxlen: int = 0,
    now: float | None = None,
) -> None:
    """Queue one settle.lua call for ``queue`` on ``pipe`` (a bare EVALSHA; see run_pipeline).

    ``acks``: stream of this queue -> entry ids to ack and delete.
    ``counters``: flat field, increment pairs for the counters hash.
    ``endings``: flat ending, count pairs for the current minute's throughput.
    ``entries``: events entries (each an ``e`` field's JSON text), written
    by ``worker`` into the queue's events stream capped near ``maxlen``.
    """
    minute = int((time.time() if now is None else now) // 60)
    streams = list(acks or ())
    args: list[Any] = [keys.GROUP, maxlen, worker, THROUGHPUT_TTL]
    for stream in streams:
        ids = acks[stream] if acks else []
        args.append(len(ids))
        args.extend(ids)
    args.append(len(counters) // 2)
    args.extend(counters)
    args.append(len(endings) // 2)
    args.extend(endings)
    args.append(len(entries))
    args.extend(entries)
    names = [keys.events(queue), keys.metrics(queue), keys.throughput(queue, minute), *streams]
    scripts.queue_evalsha(pipe, client, "settle", names, args)


def errors(reply: Any) -> list[str]:
    """The errors a settle.lua reply reports for its counters and events (none: [])."""
    if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], list):
        return []
    return [e.decode(errors="replace") if isinstance(e, bytes) else str(e) for e in reply[1]]


__all__ = ["THROUGHPUT_TTL", "errors", "queue_settle"]
