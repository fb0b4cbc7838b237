"""The recorder's side of the events streams: a consumer group over every queue's stream.

Each queue registered in ``keys.queues()`` has an events stream
(``keys.events(queue)``); the recorder reads them all as the consumer group
``taskq-recorder``, created from the start of each stream the first time a
queue is seen, so events written before the recorder ever ran are recorded
too. An entry stays in the group's pending list until it is acked after its
rows are written: a recorder that dies (or whose database refuses a write)
leaves it there, and the next one reads its pending entries back first.

Only one recorder runs at a time (the lease, ``recorder.py``), so every
recorder uses the same consumer name: "its own pending entries" are then
whatever a previous recorder read and did not ack, read back with
``XREADGROUP ... 0``, without a claim.

New entries are read with one blocking ``XREADGROUP`` (``COUNT``); on
Redis Cluster the streams of different queues live in different slots, which
one command may not span, so the read is one blocking read per slot, waited
on together (``broker/cluster_wait.py``, as the worker's fetch does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from redis.crc import key_slot

from django_taskq.broker import keys
from django_taskq.broker.cluster_wait import read_any
from django_taskq.broker.topology import is_cluster

logger = logging.getLogger("django_taskq.history")

GROUP = "taskq-recorder"
CONSUMER = "recorder"


@dataclass(frozen=True)
class Entry:
    """One stream entry read: its queue, stream, id and fields (empty if it was trimmed)."""

    queue: str
    stream: str
    id: bytes
    fields: dict[bytes, bytes]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _queue_names(raw: Any) -> list[str]:
    """The usable queue names of the registry's members; others are skipped.

    Whatever bytes are in the set: a member that is not UTF-8, or not a
    queue name, names no queue a worker reads, so it has no events stream.
    """
    names = []
    for value in raw:
        try:
            names.append(keys.check_queue_name(_text(value), "queue registry"))
        except (UnicodeDecodeError, ValueError):
            logger.debug("history recorder: skipping %r in the queue registry", value)
    return names


#: Events an entry is taken to hold before any was read: a worker's flush
#: joins up to 128 into one, a fetch's ``received`` entry up to 256 ids.
FIRST_GUESS = 128.0


class EventReader:
    """Read the events streams of every queue as the recorder's consumer group.

    A batch holds about ``budget`` events, not entries: an entry holds one
    event (a producer's ``sent``) or hundreds (a worker's flush, a fetch's
    ``received``), and a recorder that had fallen behind once read 500
    entries of 57,000 events and grew by 130 MiB folding them. So the
    ``COUNT`` of each read is the budget over the events an entry held in
    the last batch and over the streams read (at least one entry each).
    """

    def __init__(self, client: Any, budget: int, block_ms: int) -> None:
        self.client = client
        self.budget = max(1, int(budget))
        #: Events per entry in the last batch read (FIRST_GUESS before any).
        self.per_entry = FIRST_GUESS
        self.block_ms = block_ms
        #: stream key -> queue, for every stream whose group exists
        self.streams: dict[str, str] = {}
        #: Read pending entries (from id 0) before new ones: at start and after a failed write.
        self.backlog = True

    @property
    def count(self) -> int:
        """Entries to read from each stream: the budget over the events they hold."""
        return max(1, int(self.budget / (self.per_entry * max(1, len(self.streams)))))

    def observed(self, entries: int, events: int) -> None:
        """Learn how many events an entry holds from a batch that was read."""
        if entries:
            self.per_entry = max(1.0, events / entries)

    def refresh(self) -> list[str]:
        """Create the group on the streams of queues not seen yet; returns those queues."""
        found = sorted(_queue_names(self.client.smembers(keys.queues())))
        added = []
        for queue in found:
            stream = keys.events(queue)
            if stream in self.streams:
                continue
            try:
                self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self.streams[stream] = queue
            added.append(queue)
        return added

    def read(self) -> list[Entry]:
        """The next batch: pending entries while there are any, then new ones (blocking)."""
        pending = self._backlog()
        if pending:
            return pending
        if not self.streams:
            return []
        try:
            return self._read_new()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # A stream was deleted with its group (its queue was forgotten):
            # make the groups again on the next refresh.
            logger.info("history recorder: an events stream lost its group (%s)", exc)
            self.streams.clear()
            return []

    def read_now(self) -> list[Entry]:
        """Like ``read()``, without blocking: a stopping recorder's last reads."""
        return self._backlog() or self._read_each(">")

    def _backlog(self) -> list[Entry]:
        """This group's pending entries while ``backlog`` is set; [] (and unset) once none."""
        if not self.backlog:
            return []
        pending = self._read_each("0")
        if not pending:
            self.backlog = False
        return pending

    def _read_each(self, start: str) -> list[Entry]:
        """One non-blocking XREADGROUP per stream from ``start`` ("0": pending; ">": new)."""
        entries: list[Entry] = []
        for stream in list(self.streams):
            try:
                reply = self.client.xreadgroup(GROUP, CONSUMER, {stream: start}, count=self.count)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                del self.streams[stream]
                continue
            entries.extend(self._entries(reply))
        return entries

    def _read_new(self) -> list[Entry]:
        streams = list(self.streams)
        if not is_cluster(self.client):
            reply = self.client.xreadgroup(
                GROUP,
                CONSUMER,
                dict.fromkeys(streams, ">"),
                count=self.count,
                block=self.block_ms,
            )
            return self._entries(reply)
        by_slot: dict[int, list[str]] = {}
        for stream in streams:
            by_slot.setdefault(key_slot(stream.encode()), []).append(stream)
        reply = read_any(
            self.client, list(by_slot.values()), GROUP, CONSUMER, self.count, self.block_ms
        )
        return self._entries(reply)

    def _entries(self, reply: Any) -> list[Entry]:
        if not reply:
            return []
        pairs = reply.items() if isinstance(reply, dict) else reply
        out: list[Entry] = []
        for name, items in pairs:
            stream = _text(name)
            queue = self.streams.get(stream)
            if queue is None:
                continue
            for entry_id, fields in items or []:
                out.append(Entry(queue, stream, entry_id, fields or {}))
        return out

    def ack(self, entries: list[Entry]) -> None:
        """XACK ``entries`` (one pipeline; on Cluster one round trip to each node)."""
        by_stream: dict[str, list[bytes]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.id)
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, GROUP, *ids)
        pipe.execute()

    def pending(self) -> int:
        """How many entries the group holds unacked, over every stream (for tests and logs)."""
        total = 0
        for stream in self.streams:
            info = self.client.xpending(stream, GROUP)
            total += int(info["pending"] if isinstance(info, dict) else info[0])
        return total
