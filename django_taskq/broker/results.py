"""Writing result records: forward only, each in its task's slot (store_result.lua).

Every writer of a task's state goes through here: the worker's settle step,
``update_state``, ``revoke()``, the follow-ups that fail tasks downstream.
A record is JSON whose first key is ``status``; store_result.lua refuses to
replace a final state (SUCCESS, FAILURE, REVOKED) with anything but the
outcome a worker reached for a provisional revoke, so states only move
forward, and a task re-run after a crash converges on the stored outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from django_taskq import states
from django_taskq.broker import keys, scripts
from django_taskq.broker.connection import get_backend
from django_taskq.conf import taskq_settings
from django_taskq.messages import loads


def ttl_ms() -> int:
    """How long records are kept (TASKQ_RESULT_EXPIRES), in milliseconds."""
    return int(float(taskq_settings.RESULT_EXPIRES) * 1000)


def is_final(state: str) -> bool:
    return state in states.READY_STATES


def queue_store(pipe: Any, client: redis.Redis, task_id: str, record: str, state: str) -> None:
    """Queue one forward-only write of ``record`` on ``pipe`` (a bare EVALSHA).

    Execute the pipeline with ``broker.publish.run_pipeline``, which reloads
    the scripts when Redis has lost them.
    """
    scripts.queue_evalsha(
        pipe,
        client,
        "store_result",
        keys.result_keys(task_id),
        [record, ttl_ms(), 1 if is_final(state) else 0],
    )


def store_many(items: Iterable[tuple[str, str, str]], client: redis.Redis | None = None) -> None:
    """Write ``(task id, record, state)`` items in one round trip (forward only)."""
    from django_taskq.broker.publish import run_pipeline

    batch = list(items)
    if not batch:
        return
    client = client or get_backend()

    def build(pipe: Any) -> None:
        for task_id, record, state in batch:
            queue_store(pipe, client, task_id, record, state)

    run_pipeline(client, build)


def store(
    task_id: str, record: str, state: str, client: redis.Redis | None = None
) -> dict[str, Any] | None:
    """Write one record now. Returns None when stored, else the record that was kept.

    The kept record is the final state stored before (by an earlier run of
    the same message, or a worker that got there first); the caller uses it
    to act on the same outcome.
    """
    client = client or get_backend()
    reply = scripts.script(client, "store_result")(
        keys=keys.result_keys(task_id),
        args=[record, ttl_ms(), 1 if is_final(state) else 0],
        client=client,
    )
    if int(reply[0]) == 1:
        return None
    try:
        kept: dict[str, Any] = loads(reply[1])
    except Exception:  # a record someone else wrote badly: keep it, say nothing about it
        return {"status": "UNKNOWN", "result": None}
    return kept
