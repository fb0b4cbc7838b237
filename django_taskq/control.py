"""Operations on tasks and queues from outside a worker: revoke, purge, inspect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.connection import get_backend, get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.broker.scripts import script
from django_taskq.conf import taskq_settings
from django_taskq.messages import dumps


@translating_errors("revoke tasks", uses="both")
def revoke(task_ids: Iterable[str], terminate: bool = False, signal: str = "SIGKILL") -> None:
    """Mark tasks revoked: a worker that receives one skips it (state REVOKED).

    With ``terminate=True`` a prefork worker running one kills the child
    running it (the child is replaced) and records REVOKED.
    """
    ids = [str(i) for i in task_ids]
    ttl = int(float(taskq_settings.RESULT_EXPIRES) * 1000)
    client = get_broker()
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.set(keys.revoked(task_id), int(time.time()), px=ttl)
    if terminate:
        pipe.publish(
            keys.control(),
            json.dumps({"op": "revoke", "ids": ids, "terminate": True, "signal": signal}),
        )
    pipe.execute()
    backend = get_backend()
    store = script(backend, "store_result")
    bpipe = backend.pipeline(transaction=False)
    for task_id in ids:
        record = dumps(
            {
                "status": states.REVOKED,
                "result": {
                    "exc_type": "django_taskq.exceptions.TaskRevokedError",
                    "exc_message": "revoked",
                    "exc_args": ["revoked"],
                },
                "traceback": None,
                "date_done": time.time(),
                "reason": "revoke() was called",
            }
        )
        store(
            keys=keys.result_keys(task_id),
            args=[record, ttl],
            client=bpipe,
        )
    bpipe.execute()


@translating_errors("list queues")
def known_queues() -> list[str]:
    raw: Any = get_broker().smembers(keys.queues())
    return sorted(q.decode() if isinstance(q, bytes) else str(q) for q in raw)


@translating_errors("purge queues")
def purge(queues: Iterable[str] | None = None) -> int:
    """Delete every waiting (not running) message of ``queues``; returns how many."""
    client: Any = get_broker()
    names = list(queues) if queues is not None else known_queues()
    removed = 0
    for queue in names:
        for stream in keys.streams_for([queue]):
            try:
                groups = client.xinfo_groups(stream)
            except Exception:
                continue
            pending = sum(int(g.get("pending", 0)) for g in groups)
            length = int(client.xlen(stream))
            waiting = length - pending
            if waiting <= 0:
                continue
            # Delete entries not yet delivered (after the group's last id).
            for group in groups:
                last = group.get("last-delivered-id")
                entries = client.xrange(stream, min=f"({_s(last)}" if last else "-", max="+")
                ids = [e[0] for e in entries]
                if ids:
                    removed += int(client.xdel(stream, *ids))
    delayed = client.zrange(keys.delayed(), 0, -1)
    for member in delayed:
        stream = member.split(b"\n", 1)[0].decode()
        queue, _ = keys.queue_of(stream)
        if queue in names:
            removed += int(client.zrem(keys.delayed(), member))
    return removed


@translating_errors("inspect queues and workers")
def inspect() -> dict[str, Any]:
    """Queues (waiting, running, delayed), workers and dead letters, for humans."""
    client: Any = get_broker()
    out: dict[str, Any] = {"queues": {}, "workers": [], "dead_letters": 0, "delayed": 0}
    for queue in known_queues():
        waiting = running = 0
        for stream in keys.streams_for([queue]):
            length = int(client.xlen(stream))
            try:
                pending = sum(int(g.get("pending", 0)) for g in client.xinfo_groups(stream))
            except Exception:
                pending = 0
            waiting += length - pending
            running += pending
        out["queues"][queue] = {"waiting": waiting, "running": running}
    out["delayed"] = int(client.zcard(keys.delayed()))
    out["dead_letters"] = int(client.xlen(keys.dead()))
    for _, info in sorted(client.hgetall(keys.workers()).items()):
        out["workers"].append(json.loads(info))
    return out


@translating_errors("read dead letters")
def dead_letters(count: int = 20) -> list[dict[str, str]]:
    """The newest dead letters with their reason."""
    rows = []
    client: Any = get_broker()
    for entry_id, fields in client.xrevrange(keys.dead(), count=count):
        row = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
        row["entry_id"] = _s(entry_id)
        rows.append(row)
    return rows


@translating_errors("requeue dead letters")
def requeue_dead(entry_ids: Iterable[str] | None = None) -> int:
    """Put dead letters back on their streams (all when ``entry_ids`` is None)."""
    client: Any = get_broker()
    if entry_ids is None:
        entries = client.xrange(keys.dead())
    else:
        entries = [e for i in entry_ids for e in client.xrange(keys.dead(), i, i)]
    moved = 0
    for entry_id, fields in entries:
        stream = fields.get(b"stream")
        if not stream:
            continue
        pipe = client.pipeline(transaction=True)
        pipe.xadd(stream, {"i": fields.get(b"i", b""), "b": fields.get(b"b", b""), "dc": 0})
        pipe.xdel(keys.dead(), entry_id)
        pipe.execute()
        moved += 1
    return moved


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
