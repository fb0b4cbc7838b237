"""Consumer-side stream operations: create groups, fetch, ack, hand back.

A fetched message stays in the group's pending list until it is acked, so a
crash after the fetch never loses it. Every operation here is one round trip
(a Lua script or a pipeline).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from django_taskq.broker import keys
from django_taskq.broker.scripts import script
from django_taskq.conf import taskq_settings


@dataclass
class Delivery:
    """One message as fetched from a stream."""

    stream: str
    entry_id: str
    task_id: str
    body: bytes
    delivery_count: int  # earlier deliveries that did not finish, + 1 for this one
    revoked: bool


def ensure_groups(client: redis.Redis, streams: Iterable[str]) -> None:
    """Create the consumer group on every stream (and the stream) if missing."""
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
            raise reply


def fetch(client: redis.Redis, streams: list[str], consumer: str, count: int) -> list[Delivery]:
    """Read up to ``count`` new messages without blocking, preferred streams first."""
    flat = script(client, "fetch")(
        keys=streams,
        args=[keys.GROUP, consumer, count, keys.prefix() + ":revoked:"],
        client=client,
    )
    out = []
    for i in range(0, len(flat), 6):
        out.append(
            Delivery(
                stream=_s(flat[i]),
                entry_id=_s(flat[i + 1]),
                task_id=_s(flat[i + 2]),
                body=flat[i + 3],
                delivery_count=int(flat[i + 4]) + 1,
                revoked=bool(int(flat[i + 5])),
            )
        )
    return out


def block_fetch(
    client: redis.Redis, streams: list[str], consumer: str, count: int, block_ms: int
) -> list[Delivery]:
    """Block up to ``block_ms`` for new messages on any stream; sort by preference."""
    reply: Any = client.xreadgroup(
        keys.GROUP, consumer, {s: ">" for s in streams}, count=count, block=block_ms
    )
    if not reply:
        return []
    order = {s: i for i, s in enumerate(streams)}
    out: list[Delivery] = []
    for stream_raw, entries in sorted(reply, key=lambda r: order.get(_s(r[0]), 0)):
        stream = _s(stream_raw)
        for entry_id, fields in entries:
            out.append(
                Delivery(
                    stream=stream,
                    entry_id=_s(entry_id),
                    task_id=_s(fields.get(b"i", b"")),
                    body=fields.get(b"b", b""),
                    delivery_count=int(fields.get(b"dc", 0)) + 1,
                    revoked=False,
                )
            )
    if out:
        # A blocking read cannot run Lua: check revocations in one round trip.
        pipe = client.pipeline(transaction=False)
        for d in out:
            pipe.exists(keys.revoked(d.task_id))
        for d, flag in zip(out, pipe.execute(), strict=True):
            d.revoked = bool(flag)
    return out


def queue_acks(pipe: Any, acks: dict[str, list[str]]) -> None:
    """Add XACK + XDEL for ``{stream: [entry ids]}`` to a pipeline."""
    for stream, ids in acks.items():
        pipe.xack(stream, keys.GROUP, *ids)
        pipe.xdel(stream, *ids)


def reclaim_args(mode: str, bump: bool, consumer: str = "", ids: Iterable[str] = ()) -> list[Any]:
    return [
        keys.GROUP,
        mode,
        keys.prefix() + ":hb:",
        int(taskq_settings.MAX_DELIVERIES),
        int(taskq_settings.DEAD_LETTER_MAXLEN),
        keys.prefix() + ":r:",
        int(float(taskq_settings.RESULT_EXPIRES) * 1000),
        1 if bump else 0,
        consumer,
        *ids,
    ]


def hand_back(client: redis.Redis, stream: str, ids: list[str]) -> None:
    """Return unstarted messages to their stream (delivery count unchanged)."""
    if ids:
        script(client, "reclaim")(
            keys=[stream, keys.dead()], args=reclaim_args("ids", False, ids=ids), client=client
        )


@dataclass
class Reclaimed:
    """What a reclaim step did: re-added, dead-lettered, and the dead bodies."""

    requeued: int = 0
    dead: int = 0
    dead_bodies: list[bytes] = field(default_factory=list)

    def add(self, reply: Any) -> None:
        self.requeued += int(reply[0])
        self.dead += int(reply[1])
        self.dead_bodies.extend(reply[2])


def _settled(result: Reclaimed) -> Reclaimed:
    if result.dead_bodies:
        from django_taskq.worker.lost import settle

        settle(result.dead_bodies)
    return result


def redeliver(client: redis.Redis, stream: str, ids: list[str]) -> Reclaimed:
    """Re-add messages whose run did not finish (count a delivery; dead-letter at the cap)."""
    result = Reclaimed()
    if ids:
        result.add(
            script(client, "reclaim")(
                keys=[stream, keys.dead()], args=reclaim_args("ids", True, ids=ids), client=client
            )
        )
    return _settled(result)


def reclaim_consumer(
    client: redis.Redis, streams: Iterable[str], consumer: str, bump: bool
) -> Reclaimed:
    """Give back everything ``consumer`` holds on ``streams``."""
    result = Reclaimed()
    reclaim = script(client, "reclaim")
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        reclaim(
            keys=[stream, keys.dead()], args=reclaim_args("consumer", bump, consumer), client=pipe
        )
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, Exception):
            if "NOGROUP" in str(reply):
                continue
            raise reply
        result.add(reply)
    return _settled(result)


def reclaim_dead(client: redis.Redis, streams: Iterable[str]) -> Reclaimed:
    """Give back the messages of every consumer whose heartbeat has expired."""
    result = Reclaimed()
    reclaim = script(client, "reclaim")
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        reclaim(keys=[stream, keys.dead()], args=reclaim_args("dead", True), client=pipe)
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, Exception):
            continue
        result.add(reply)
    return _settled(result)


def dead_letter(pipe: Any, delivery: Delivery, reason: str, maxlen: int | None = None) -> None:
    """Queue an XADD of ``delivery`` to the dead-letter stream with ``reason``."""
    pipe.xadd(
        keys.dead(),
        {
            "i": delivery.task_id,
            "b": delivery.body,
            "reason": reason,
            "stream": delivery.stream,
            "at": f"{time.time():.3f}",
        },
        maxlen=maxlen or int(taskq_settings.DEAD_LETTER_MAXLEN),
        approximate=True,
    )


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
