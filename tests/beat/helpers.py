"""Helpers for beat tests: read what beat enqueued straight from Redis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from django_taskq.broker import keys


@dataclass
class Sent:
    """One message found in a ready stream."""

    name: str | None
    task: str
    due: str | None
    queue: str
    priority: int
    added_ms: int  # when Redis added it (stream entry id)
    body: dict[str, Any]


def sent_messages(client: redis.Redis) -> list[Sent]:
    """Every message in every ready stream, oldest first."""
    found: list[Sent] = []
    queues = sorted(q.decode() for q in client.smembers(keys.queues()))
    for queue in queues:
        for priority in keys.PRIORITIES:
            for entry_id, fields in client.xrange(keys.stream(queue, priority)):
                body = json.loads(fields[b"b"])
                headers = body.get("headers") or {}
                found.append(
                    Sent(
                        name=headers.get("periodic_task_name"),
                        task=body["task"],
                        due=headers.get("periodic_task_due"),
                        queue=queue,
                        priority=priority,
                        added_ms=int(entry_id.split(b"-")[0]),
                        body=body,
                    )
                )
    found.sort(key=lambda s: s.added_ms)
    return found
