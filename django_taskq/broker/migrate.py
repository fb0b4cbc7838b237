"""Move the keys of django_taskq 0.1 (one Redis, no hash tags) to the layout of broker/keys.py.

Version 0.1 named its keys ``<prefix>:q:<queue>:<priority>``,
``<prefix>:delayed``, ``<prefix>:r:<task id>`` and so on. Since 0.2 every
key carries the hash tag of what it belongs to (Redis Cluster). A worker of
0.2 does not read the old keys; ``manage.py taskq_migrate_keys`` moves
them, once, while no worker runs:

- every message of every old queue stream, ready or left pending by a
  worker that stopped without finishing it (counted as a delivery, as
  recovery would), goes to the same queue and priority;
- delayed messages keep their due time;
- dead letters, results (with their remaining time to live), revocations,
  saved groups, chord counts, beat's last-run hash and schedule version.

Heartbeats, the old worker list, rate-limit buckets and once keys are
dropped: they expire anyway and are made again. Each key is deleted only
after its contents are written anew, so a migration interrupted half way
can simply be run again. This is the one place that uses SCAN: a
one-time command, never a worker's path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from django_taskq.broker import keys
from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.migrate")


@dataclass
class Report:
    """What a migration moved (or, in a dry run, would move)."""

    messages: int = 0
    delayed: int = 0
    dead: int = 0
    results: int = 0
    revoked: int = 0
    other: int = 0
    dropped: int = 0
    queues: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"queues: {', '.join(self.queues) or '(none)'}",
            f"messages: {self.messages}",
            f"delayed messages: {self.delayed}",
            f"dead letters: {self.dead}",
            f"results: {self.results}",
            f"revocations: {self.revoked}",
            f"groups, chords and beat keys: {self.other}",
            f"keys dropped (heartbeats, workers, rate limits, once keys): {self.dropped}",
        ]


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def old_keys_present(client: Any) -> bool:
    """True when keys of the 0.1 layout exist (a cheap check a worker makes at start)."""
    p = keys.prefix()
    return bool(client.exists(f"{p}:queues", f"{p}:delayed", f"{p}:dead"))


def _old_queue_of(stream: str, p: str) -> tuple[str, int] | None:
    """``<p>:q:<queue>:<priority>`` -> (queue, priority)."""
    head = f"{p}:q:"
    if not stream.startswith(head):
        return None
    queue, _, priority = stream[len(head) :].rpartition(":")
    if not queue or not priority.isdigit() or not 0 <= int(priority) <= 9:
        return None
    return queue, int(priority)


def migrate(client: Any, *, dry_run: bool = False) -> Report:
    """Move every 0.1 key to the current layout; returns what was (or would be) moved."""
    p = keys.prefix()
    report = Report()
    queues = sorted(_s(q) for q in client.smembers(f"{p}:queues"))
    report.queues = queues
    for queue in queues:
        for priority in range(10):
            report.messages += _move_stream(
                client, f"{p}:q:{queue}:{priority}", queue, priority, dry_run
            )
    report.delayed = _move_delayed(client, p, dry_run)
    report.dead = _move_dead(client, p, dry_run)
    known = sorted(set(queues) | {_s(q) for q in client.smembers(keys.queues())})
    for old in client.scan_iter(match=f"{p}:*", count=1000):
        name = _s(old)
        rest = name[len(p) + 1 :]
        kind, _, ident = rest.partition(":")
        if kind == "r" and ident:
            report.results += _copy_string(client, name, keys.result(ident), dry_run)
        elif kind == "revoked" and ident:
            report.revoked += _move_revoked(client, name, ident, known, dry_run)
        elif kind == "g" and ident:
            report.other += _copy_string(client, name, keys.group_meta(ident), dry_run)
        elif kind == "chord" and ident:
            report.other += _copy_hash(client, name, keys.chord_parts(ident), dry_run)
        elif rest == "beat:last":
            report.other += _copy_hash(client, name, keys.global_key("beat:last"), dry_run)
        elif rest == "beat:version":
            report.other += _copy_string(client, name, keys.global_key("beat:version"), dry_run)
        elif kind in {"w", "n", "hb", "sent", "rate", "workers"} or rest.startswith("beat:"):
            report.dropped += 1
            if not dry_run:
                client.delete(name)
    if not dry_run:
        if queues:
            client.sadd(keys.queues(), *queues)
        client.delete(f"{p}:queues")
    return report


def _move_stream(client: Any, old: str, queue: str, priority: int, dry_run: bool) -> int:
    if not client.exists(old):
        return 0
    pending: set[str] = set()
    try:
        start = "-"
        while True:
            rows: Any = client.xpending_range(old, keys.GROUP, min=start, max="+", count=1000)
            if not rows:
                break
            pending.update(_s(r["message_id"]) for r in rows)
            last = _s(rows[-1]["message_id"])
            start = "(" + last
    except redis.ResponseError:
        pass  # no group: nothing was ever fetched
    moved = 0
    new = keys.stream(queue, priority)
    for entry_id, fields in client.xrange(old):
        moved += 1
        if dry_run:
            continue
        out = dict(fields)
        if _s(entry_id) in pending:
            try:
                out[b"dc"] = str(int(out.get(b"dc", b"0")) + 1).encode()
            except ValueError:
                pass  # a bad count stays as it is: the worker dead-letters it
        client.xadd(new, out)
    if not dry_run:
        client.delete(old)
    return moved


def _move_delayed(client: Any, p: str, dry_run: bool) -> int:
    old = f"{p}:delayed"
    moved = 0
    for member, score in client.zrange(old, 0, -1, withscores=True):
        stream, _, rest = member.partition(b"\n")
        place = _old_queue_of(_s(stream), p)
        if place is None:
            logger.warning("skipping a delayed member naming no queue: %r", member[:80])
            continue
        queue, priority = place
        moved += 1
        if not dry_run:
            pipe = client.pipeline(transaction=False)
            pipe.zadd(keys.delayed(queue), {str(priority).encode() + b"\n" + rest: score})
            pipe.sadd(keys.queues(), queue)
            pipe.zrem(old, member)
            pipe.execute()
    return moved


def _move_dead(client: Any, p: str, dry_run: bool) -> int:
    old = f"{p}:dead"
    moved = 0
    for entry_id, fields in client.xrange(old):
        place = _old_queue_of(_s(fields.get(b"stream", b"")), p)
        queue, priority = place or (str(taskq_settings.DEFAULT_QUEUE), 0)
        moved += 1
        if not dry_run:
            out = dict(fields)
            out[b"stream"] = keys.stream(queue, priority).encode()
            client.xadd(keys.dead(queue), out)
            client.xdel(old, entry_id)
    if not dry_run and not client.xlen(old):
        client.delete(old)
    return moved


def _copy_string(client: Any, old: str, new: str, dry_run: bool) -> int:
    if dry_run:
        return 1
    value, ttl = client.get(old), client.pttl(old)
    if value is None:
        return 0
    client.set(new, value, px=int(ttl) if int(ttl) > 0 else None, nx=True)
    client.delete(old)
    return 1


def _copy_hash(client: Any, old: str, new: str, dry_run: bool) -> int:
    if dry_run:
        return 1
    values, ttl = client.hgetall(old), client.pttl(old)
    if values:
        client.hset(new, mapping=values)
        if int(ttl) > 0:
            client.pexpire(new, int(ttl))
    client.delete(old)
    return 1


def _move_revoked(
    client: redis.Redis, old: str, task_id: str, queues: list[str], dry_run: bool
) -> int:
    if dry_run:
        return 1
    ttl = int(client.pttl(old))
    until = int(time.time() * 1000) + (ttl if ttl > 0 else 86_400_000)
    for queue in queues:
        client.zadd(keys.revoked(queue), {task_id: until})
    client.delete(old)
    return 1


def live_old_workers(client: Any) -> int:
    """Heartbeats of 0.1 workers that are still alive (they must be stopped first)."""
    return sum(1 for _ in client.scan_iter(match=f"{keys.prefix()}:hb:*", count=1000))
