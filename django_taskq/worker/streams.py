"""Consumer-side stream operations: create groups, fetch, read back, hand back, reclaim.

A fetched message stays in the group's pending list until it is acked, so a
crash after the fetch never loses it. Each Lua script here touches the keys
of one queue (one hash tag); steps over several queues are pipelines of
such calls. Entries come back with their fields as Redis holds them: they
are checked in ``worker/entries.py``, never trusted here.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from django_taskq.broker import keys, scripts, topology
from django_taskq.broker.publish import run_pipeline
from django_taskq.conf import taskq_settings
from django_taskq.safe_text import encodable

#: stream key -> its queue: parsed once per stream, not once per message (the
#: parse reads the key prefix from the settings, which is dear on the hot path).
_QUEUE_OF: dict[str, str] = {}


@dataclass
class Delivery:
    """One entry as fetched from a stream: where it is, and its raw fields."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    revoked: bool = False
    #: When this process read it (epoch seconds): the events' ``rcv``.
    received: float = field(default_factory=time.time)

    @property
    def queue(self) -> str:
        found = _QUEUE_OF.get(self.stream)
        if found is None:
            if len(_QUEUE_OF) > 10_000:  # streams are few; never grow without bound
                _QUEUE_OF.clear()
            found = _QUEUE_OF[self.stream] = keys.queue_of(self.stream)[0]
        return found

    @property
    def raw_task_id(self) -> bytes:
        return self.fields.get(b"i", b"")


def ensure_groups(client: redis.Redis, streams: Iterable[str]) -> None:
    """Create the consumer group on every stream (and the stream) if missing."""
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
            raise reply


def _fields(flat: Any) -> dict[bytes, bytes]:
    """A stream entry's field list (flat, from Lua, or a dict) as a dict; odd items dropped."""
    if isinstance(flat, dict):
        return dict(flat)
    items = list(flat or [])
    return dict(zip(items[0::2], items[1::2], strict=False))


@dataclass(frozen=True)
class Received:
    """Who records the messages it fetches as received, and how long the events stream gets.

    A consumer with task events on passes one to ``fetch`` and
    ``block_fetch``: each call then appends one ``received`` entry per queue
    for the whole batch (events.py), in the call that fetches it.
    """

    worker: str
    maxlen: int


#: Queues one fetch.lua call reads at most on one Redis (or Sentinel): each
#: adds 12 key names to the call (its revoked set, ten streams, its events
#: stream), sent whether or not the batch fills before them; past this many,
#: the next queues take another call. On Cluster a call reads one queue.
QUEUES_PER_CALL = 16


@dataclass(frozen=True)
class _Call:
    """One fetch.lua call of a plan: its keys, and its ARGV after the first six."""

    names: list[str]
    tail: list[int]


#: (key prefix, queues, events on, Cluster) -> the calls that fetch them.
_PLANS: dict[tuple[str, tuple[str, ...], bool, bool], list[_Call]] = {}


def _plan(client: redis.Redis, queues: list[str], events: bool) -> list[_Call]:
    """The fetch.lua calls that read ``queues`` in order (made once per list of queues)."""
    cluster = topology.is_cluster(client)
    key = (keys.prefix(), tuple(queues), events, cluster)
    found = _PLANS.get(key)
    if found is not None:
        return found
    per_call = 1 if cluster else QUEUES_PER_CALL
    calls = []
    for start in range(0, len(queues), per_call):
        names: list[str] = []
        tail: list[int] = []
        for queue in queues[start : start + per_call]:
            streams = keys.queue_streams(queue)
            names += [keys.revoked(queue), *streams]
            if events:
                names.append(keys.events(queue))
            tail.append(len(streams))
        calls.append(_Call(names, tail))
    if len(_PLANS) > 256:  # a worker's queues change rarely (add_consumer); stay small
        _PLANS.clear()
    _PLANS[key] = calls
    return calls


def fetch(
    client: redis.Redis,
    queues: list[str],
    consumer: str,
    count: int,
    received: Received | None = None,
) -> list[Delivery]:
    """Read up to ``count`` new messages without blocking: queue order, then priority 9..0.

    One fetch.lua call reads up to QUEUES_PER_CALL queues (one on Cluster,
    where each queue is its own slot), stopping as soon as the batch is
    full: a worker on 100 queues of which few hold messages makes a few
    round trips, not one per empty queue (docs/benchmarks.md, "Cost as
    work grows"). With ``received``, the call also writes each queue's
    ``received`` entry for the batch to the queue's events stream.
    """
    out: list[Delivery] = []
    head: list[Any] = [
        keys.GROUP,
        consumer,
        count,
        int(time.time() * 1000),
        received.maxlen if received is not None else 0,
        received.worker if received is not None else "",
    ]
    run = scripts.script(client, "fetch")
    for call in _plan(client, queues, received is not None):
        want = count - len(out)
        if want <= 0:
            break
        head[2] = want
        names = call.names
        flat = run(keys=names, args=head + call.tail, client=client)
        i, n = 0, len(flat)
        while i < n:
            index, entry_id, revoked, first = flat[i : i + 4]
            if isinstance(first, list):  # an entry of other fields, as it is
                fields = _fields(first)
                i += 4
            else:
                fields = {b"i": first, b"b": flat[i + 4], b"dc": flat[i + 5]}
                i += 6
            out.append(
                Delivery(
                    stream=names[int(index) - 1],
                    entry_id=_s(entry_id),
                    revoked=bool(revoked),
                    fields=fields,
                )
            )
    return out


def block_fetch(
    client: redis.Redis,
    streams: list[str],
    consumer: str,
    count: int,
    block_ms: int,
    received: Received | None = None,
) -> list[Delivery]:
    """Block up to ``block_ms`` for new messages on any stream; sorted by preference.

    On Cluster, streams of several slots (several queues) are waited on
    together by broker/cluster_wait.py, one read per slot. With
    ``received``, the batch's ``received`` entries are written in the
    pipeline that reads which of its messages are revoked (no round trip
    of their own).
    """
    groups = topology.slot_groups(client, streams)
    if len(groups) > 1:
        from django_taskq.broker import cluster_wait

        reply: Any = cluster_wait.read_any(client, groups, keys.GROUP, consumer, count, block_ms)
        return _deliveries(client, streams, reply, received)
    reply = client.xreadgroup(
        keys.GROUP, consumer, {s: ">" for s in streams}, count=count, block=block_ms
    )
    return _deliveries(client, streams, reply, received)


def read_own(client: redis.Redis, streams: list[str], consumer: str) -> list[Delivery]:
    """What the server says ``consumer`` holds: its pending entries, with their fields.

    After a reconnect the reply to a fetch may have been lost while Redis
    did run it: those entries are pending under this consumer, which alone
    can see them (recovery leaves a live consumer's messages alone).
    Entries deleted meanwhile come back without fields; they are acked.
    """
    found: list[Delivery] = []
    gone: dict[str, list[str]] = collections.defaultdict(list)
    # One read per queue (its streams share a slot), then pages of the
    # streams that had more.
    by_queue: dict[str, dict[Any, Any]] = collections.defaultdict(dict)
    for stream in streams:
        by_queue[keys.queue_of(stream)[0]][stream] = "0"
    page = 500
    for cursor in by_queue.values():
        while cursor:
            reply: Any = client.xreadgroup(keys.GROUP, consumer, cursor, count=page)
            cursor = {}
            for stream_raw, entries in reply or []:
                stream = _s(stream_raw)
                for entry_id, fields in entries:
                    if fields:
                        found.append(Delivery(stream, _s(entry_id), _fields(fields)))
                    else:
                        gone[stream].append(_s(entry_id))
                if len(entries) >= page:
                    cursor[stream] = _s(entries[-1][0])
    if gone:
        pipe = client.pipeline(transaction=False)
        for stream, ids in gone.items():
            pipe.xack(stream, keys.GROUP, *ids)
        pipe.execute()
    if found:
        _mark_revoked(client, found)
    return found


def _deliveries(
    client: redis.Redis, streams: list[str], reply: Any, received: Received | None = None
) -> list[Delivery]:
    if not reply:
        return []
    order = {s: i for i, s in enumerate(streams)}
    out: list[Delivery] = []
    for stream_raw, entries in sorted(reply, key=lambda r: order.get(_s(r[0]), 0)):
        stream = _s(stream_raw)
        for entry_id, fields in entries:
            if fields:
                out.append(Delivery(stream=stream, entry_id=_s(entry_id), fields=_fields(fields)))
    if out:
        _mark_revoked(client, out, received)
    return out


def _mark_revoked(
    client: redis.Redis, deliveries: list[Delivery], received: Received | None = None
) -> None:
    """Flag revoked deliveries: one ZMSCORE per queue (a blocking read cannot run Lua).

    With ``received``, the same pipeline appends each queue's ``received``
    entry (the one fetch.lua writes for a non-blocking fetch). An error of
    that XADD (an events key of the wrong type) is ignored, as fetch.lua
    ignores it: the messages are fetched either way.
    """
    by_queue: dict[str, list[Delivery]] = collections.defaultdict(list)
    for d in deliveries:
        by_queue[d.queue].append(d)
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for queue, group in by_queue.items():
        members: list[Any] = [d.raw_task_id for d in group]
        pipe.zmscore(keys.revoked(queue), members)
    if received is not None:
        for queue, group in by_queue.items():
            ids = [_s(d.raw_task_id) for d in group if d.raw_task_id]
            if ids:
                pipe.xadd(
                    keys.events(queue),
                    {"r": json.dumps(ids), "ts": now_ms, "w": received.worker},
                    maxlen=received.maxlen,
                    approximate=True,
                )
    replies = pipe.execute(raise_on_error=False)
    for group, scores in zip(by_queue.values(), replies, strict=False):
        if isinstance(scores, Exception):
            raise scores
        for d, score in zip(group, scores, strict=True):
            d.revoked = score is not None and float(score) > now_ms


def queue_dead_letter(pipe: Any, client: redis.Redis, delivery: Delivery, reason: str) -> None:
    """Queue the move of ``delivery`` to its queue's dead letters (dead_letter.lua).

    The reason is made encodable: it may quote anything (a task's
    ``Reject(reason)``, a field of the message), and a lone surrogate in it
    made the whole flush fail, killing a prefork child at every delivery.
    """
    reason = encodable(reason)
    scripts.queue_evalsha(
        pipe,
        client,
        "dead_letter",
        [delivery.stream, keys.dead(delivery.queue)],
        [
            keys.GROUP,
            delivery.entry_id,
            reason,
            f"{time.time():.3f}",
            int(taskq_settings.DEAD_LETTER_MAXLEN),
        ],
    )


def _reclaim_args(
    mode: str, bump: bool, verdict: str, consumer: str, ids: Iterable[str]
) -> list[Any]:
    return [keys.GROUP, mode, 1 if bump else 0, verdict, consumer, *ids]


def give_back(
    client: redis.Redis, stream: str, ids: list[str], *, crashed: bool = False, verdict: str = ""
) -> int:
    """Re-add pending entries at the end of ``stream``.

    ``crashed``: their run did not finish, which counts a delivery.
    ``verdict``: how the next consumer must settle them instead of running
    them (the parent killed the run at its time limit, or terminated it).
    Neither: a hand-back of unstarted messages, which changes nothing.
    """
    if not ids:
        return 0
    return int(
        scripts.script(client, "reclaim")(
            keys=[stream], args=_reclaim_args("ids", crashed, verdict, "", ids), client=client
        )
    )


def reclaim_consumer(
    client: redis.Redis, streams: Iterable[str], consumer: str, *, crashed: bool
) -> int:
    """Give back everything ``consumer`` holds on ``streams`` and forget the consumer."""
    stream_list = list(streams)
    if not stream_list:
        return 0

    def build(pipe: Any) -> None:
        for stream in stream_list:
            scripts.queue_evalsha(
                pipe,
                client,
                "reclaim",
                [stream],
                _reclaim_args("consumer", crashed, "", consumer, ()),
            )

    moved = 0
    pipe_replies = _run_tolerant(client, build)
    for reply in pipe_replies:
        if isinstance(reply, Exception):
            if "NOGROUP" in str(reply):
                continue
            raise reply
        moved += int(reply)
    return moved


def _run_tolerant(client: redis.Redis, build: Any) -> list[Any]:
    """``run_pipeline`` that returns errors as replies (a missing group is not a failure)."""

    def execute() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        build(pipe)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies

    replies = execute()
    if any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
        scripts.load_all(client)
        replies = execute()
    return replies


def reclaim_dead(client: redis.Redis, streams: list[str]) -> int:
    """Give back the messages of every consumer of ``streams`` whose heartbeat has expired.

    Which consumers a stream has is read per stream; whether each is alive
    is read from its heartbeat key (in the global slot) in a second step,
    and only then are its messages moved, one reclaim.lua call per stream.
    Checking first and moving after is safe because a consumer's name is
    never used again once it is gone (a new token at every start), and a
    consumer's heartbeat exists before its first read.
    """
    pipe = client.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_consumers(stream, keys.GROUP)
    held: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for stream, reply in zip(streams, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, Exception):
            continue  # no stream or no group yet
        for consumer in reply:
            name = _s(consumer.get("name", b""))
            held[name].append((stream, int(consumer.get("pending", 0))))
    if not held:
        return 0
    names = list(held)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.exists(keys.heartbeat(name))
    dead = [name for name, alive in zip(names, pipe.execute(), strict=True) if not alive]
    moved = 0
    forget = client.pipeline(transaction=False)
    for name in dead:
        with_messages = [stream for stream, pending in held[name] if pending]
        if with_messages:
            moved += reclaim_consumer(client, with_messages, name, crashed=True)
        for stream, pending in held[name]:
            if not pending:
                forget.xgroup_delconsumer(stream, keys.GROUP, name)
    forget.execute(raise_on_error=False)
    return moved


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


__all__ = [
    "Delivery",
    "Received",
    "block_fetch",
    "ensure_groups",
    "fetch",
    "give_back",
    "queue_dead_letter",
    "read_own",
    "reclaim_consumer",
    "reclaim_dead",
    "run_pipeline",
]
