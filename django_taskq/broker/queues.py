"""The queue registry: which queues exist, without KEYS or SCAN, and without growing forever.

Producers add a queue to the registry set when they publish to it (at most
every few seconds per client, queued after the message itself); workers add
the queues they consume at every recovery pass. Recovery, inspect and purge
enumerate queues from it.

A queue that is empty (no ready, delayed or dead message), that no live
worker consumes, and that no one has written to for
TASKQ_QUEUE_FORGET_AFTER seconds is forgotten: its keys are deleted in one
step in its own slot (forget_queue.lua), then it leaves the registry, and
then it is checked once more and put back if a producer published to it
in between. A producer that publishes after that re-registers it itself,
because it registers after publishing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from django_taskq.broker import keys, scripts
from django_taskq.conf import taskq_settings


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def known(client: redis.Redis) -> list[str]:
    """Every registered queue name."""
    raw: Any = client.smembers(keys.queues())
    return sorted(_s(q) for q in raw)


def register(client: redis.Redis, queues: list[str]) -> None:
    if queues:
        client.sadd(keys.queues(), *queues)


def consumed(client: redis.Redis) -> set[str]:
    """Queues some worker that beat within the heartbeat timeout consumes."""
    timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
    since = (time.time() - timeout) * 1000
    names = [_s(n) for n in client.zrangebyscore(keys.workers(), since, "+inf")]
    if not names:
        return set()
    out: set[str] = set()
    for raw in client.mget([keys.worker_info(n) for n in names]):
        try:
            info = json.loads(raw) if raw else {}
        except ValueError:
            continue
        out.update(str(q) for q in info.get("queues") or [])
    return out


def queue_keys(queue: str) -> list[str]:
    return [
        keys.delayed(queue),
        keys.dead(queue),
        keys.revoked(queue),
        *keys.queue_streams(queue),
    ]


def prune(client: redis.Redis) -> list[str]:
    """Forget queues empty and unused for TASKQ_QUEUE_FORGET_AFTER seconds; returns them."""
    in_use = consumed(client)
    cutoff_ms = int((time.time() - float(taskq_settings.QUEUE_FORGET_AFTER)) * 1000)
    forget = scripts.script(client, "forget_queue")
    removed = []
    for queue in known(client):
        if queue in in_use:
            continue
        if not int(forget(keys=queue_keys(queue), args=[cutoff_ms], client=client)):
            continue
        client.srem(keys.queues(), queue)
        # A publish between the script and the SREM has made a stream again.
        pipe = client.pipeline(transaction=False)
        pipe.zcard(keys.delayed(queue))
        for stream in keys.queue_streams(queue):
            pipe.exists(stream)
        if any(int(n) for n in pipe.execute()):
            client.sadd(keys.queues(), queue)
        else:
            removed.append(queue)
    return removed
