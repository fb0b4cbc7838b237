"""Operations on tasks and queues from outside a worker: revoke, purge, inspect, dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from django_taskq import states
from django_taskq.broker import keys, results, scripts
from django_taskq.broker import queues as queue_registry
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.conf import taskq_settings
from django_taskq.messages import dumps
from django_taskq.monitor.queues import queue_stats


@translating_errors("revoke tasks", uses="both")
def revoke(task_ids: Iterable[str], terminate: bool = False, signal: str = "SIGKILL") -> None:
    """Mark tasks revoked: a worker that receives one skips it (state REVOKED).

    The revocation is written into every known queue (so each queue's fetch
    finds it in its own slot) for TASKQ_RESULT_EXPIRES. A task's result
    becomes REVOKED unless it has finished already: a finished result is
    left alone. The REVOKED record is provisional: if the task was running
    (and not terminated), the outcome it reaches replaces it. With
    ``terminate=True`` a prefork worker running one kills the child running
    it (the child is replaced), and the task ends REVOKED.
    """
    ids = [str(i) for i in task_ids]
    if not ids:
        return
    ttl = results.ttl_ms()
    now_ms = int(time.time() * 1000)
    client = get_broker()
    queues = sorted(set(known_queues()) | {str(taskq_settings.DEFAULT_QUEUE)})
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zadd(keys.revoked(queue), {task_id: now_ms + ttl for task_id in ids})
        pipe.zremrangebyscore(keys.revoked(queue), "-inf", now_ms)
    if terminate:
        pipe.publish(
            keys.control(),
            json.dumps({"op": "revoke", "ids": ids, "terminate": True, "signal": signal}),
        )
    pipe.execute()
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
            "provisional": True,
        }
    )
    # Not a final write: a finished task keeps its result.
    results.store_many((task_id, record, states.STARTED) for task_id in ids)


@translating_errors("list queues")
def known_queues() -> list[str]:
    return queue_registry.known(get_broker())


@translating_errors("purge queues")
def purge(queues: Iterable[str] | None = None) -> int:
    """Delete every waiting (not running) message of ``queues``; returns how many."""
    client: Any = get_broker()
    names = list(queues) if queues is not None else known_queues()
    purge_script = scripts.script(client, "purge")
    removed = 0
    for queue in names:
        removed += int(
            purge_script(
                keys=[keys.delayed(queue), *keys.queue_streams(queue)],
                args=[keys.GROUP],
                client=client,
            )
        )
    return removed


@translating_errors("list workers")
def workers(client: Any = None) -> list[dict[str, Any]]:
    """Every worker still remembered, with ``online`` (it beat within the heartbeat timeout)."""
    client = client or get_broker()
    entries = client.zrange(keys.workers(), 0, -1, withscores=True)
    if not entries:
        return []
    names = [_s(name) for name, _ in entries]
    infos = client.mget([keys.worker_info(name) for name in names])
    timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
    now = time.time()
    out = []
    for (name, score), raw in zip(entries, infos, strict=True):
        info: dict[str, Any]
        try:
            info = json.loads(raw) if raw else {"name": _s(name)}
        except ValueError:
            info = {"name": _s(name)}
        info["last_beat"] = float(score) / 1000
        info["online"] = now - info["last_beat"] <= timeout
        out.append(info)
    return out


@translating_errors("inspect queues and workers")
def inspect() -> dict[str, Any]:
    """Queues (waiting, running, delayed, dead), workers and totals, for humans."""
    out: dict[str, Any] = {"queues": {}, "workers": [], "dead_letters": 0, "delayed": 0}
    for stats in queue_stats():
        out["queues"][stats.name] = {
            "waiting": stats.ready,
            "running": stats.in_flight,
            "delayed": stats.delayed,
            "dead": stats.dead,
        }
        out["delayed"] += stats.delayed
        out["dead_letters"] += stats.dead
    out["workers"] = [w for w in workers(get_broker()) if w["online"]]
    return out


@translating_errors("read dead letters")
def dead_letters(count: int = 20, queues: Iterable[str] | None = None) -> list[dict[str, str]]:
    """The newest dead letters of ``queues`` (default: all), newest first, with their reason."""
    client: Any = get_broker()
    names = list(queues) if queues is not None else known_queues()
    rows = []
    for queue in names:
        for entry_id, fields in client.xrevrange(keys.dead(queue), count=count):
            row = {_s(k): _s(v) for k, v in fields.items()}
            row["entry_id"] = _s(entry_id)
            row["queue"] = queue
            rows.append(row)
    rows.sort(key=lambda r: _entry_order(r["entry_id"]), reverse=True)
    return rows[:count]


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


#: Fields a dead letter has beside those of the entry it was.
DEAD_FIELDS = (b"reason", b"stream", b"at")


@translating_errors("requeue dead letters")
def requeue_dead(
    entry_ids: Iterable[str] | None = None, queues: Iterable[str] | None = None
) -> int:
    """Put dead letters back on their streams with a fresh delivery count (all when None).

    Each goes back with the fields it had, minus the dead letter's own and
    any verdict, in one MULTI in its queue's slot, so it is never both a
    dead letter and queued, nor neither.
    """
    client: Any = get_broker()
    names = list(queues) if queues is not None else known_queues()
    wanted = None if entry_ids is None else {str(i) for i in entry_ids}
    moved = 0
    for queue in names:
        dead = keys.dead(queue)
        if wanted is None:
            entries = client.xrange(dead)
        else:
            entries = [e for i in wanted for e in client.xrange(dead, i, i)]
        valid_streams = set(keys.queue_streams(queue))
        for entry_id, fields in entries:
            stream = _s(fields.get(b"stream", b""))
            if stream not in valid_streams:
                stream = keys.stream(queue, 0)
            back = {k: v for k, v in fields.items() if k not in DEAD_FIELDS and k != b"v"}
            back[b"dc"] = b"0"
            pipe = client.pipeline(transaction=True)
            pipe.xadd(stream, back)
            pipe.xdel(dead, entry_id)
            pipe.execute()
            moved += 1
    return moved


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
