"""Unique keys in Redis: taken with the publish, given up when the task ends.

A unique task's message carries its unique key (the Redis key, in the slot
of its queue) in the header ``unique``, with its ``unique_for``. The
producer sends it with ``publish_unique()``: enqueue.lua takes the key (SET
with the task id and a TTL) in the same step as the publish, or answers
with the id of the task that holds it. The worker gives the key up when the
task ends for good (success, failure, dead letter, revoke, expiry, a
time-limit kill) with ``queue_release()`` in the flush that acks it, and on
a retry keeps it until the retry is due plus ``unique_for``. Both are
compare-and-set on the task id (unique_release.lua): a key that lapsed and
was taken by another task is never touched.

Tasks without the header pay one dict lookup in the worker, nothing else.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis

from django_taskq import states
from django_taskq.broker import keys, scripts
from django_taskq.broker.connection import backend_is_broker, get_broker
from django_taskq.messages import Envelope

logger = logging.getLogger("django_taskq.unique")

#: Envelope header of a unique task: {"key": <Redis key>, "for": <seconds>}.
HEADER = "unique"


def header(queue: str, name: str, unique_for: float) -> dict[str, Any]:
    """The ``unique`` header for unique key ``name`` of a task sent to ``queue``."""
    return {"key": keys.unique(queue, name), "for": unique_for}


def publish_unique(
    envelope: Envelope, ttl_ms: int, serializer: str | None, compression: str | None = None
) -> str | None:
    """Publish ``envelope`` unless another task holds its unique key; return that task's id.

    ``envelope`` carries the ``unique`` header (``header()``); the key is
    kept ``ttl_ms``. Returns None when ``envelope`` was queued (or had been,
    by an attempt whose reply was lost). Retried on a lost connection as
    ``publish()`` is, within TASKQ_PUBLISH_TIMEOUT.
    """
    from django_taskq import codecs
    from django_taskq.broker.publish import (
        _record_pending_elsewhere,
        pending_in_script,
        queue_publish,
        run_pipeline,
        with_publish_retry,
    )

    key = envelope.headers[HEADER]["key"]
    body = envelope.encode(*codecs.choose(envelope.task, serializer, compression))

    def send() -> list[Any]:
        client = get_broker()
        return run_pipeline(
            client,
            lambda p: queue_publish(p, client, envelope, body, unique=(key, ttl_ms)),
        )

    replies = with_publish_retry(f"send task {envelope.task}", send, task_ids=[envelope.id])
    client = get_broker()
    holder = replies[0]
    if isinstance(holder, int):  # 1: queued; 0: queued by an attempt whose reply was lost
        _record_pending_elsewhere([envelope])
        return None
    if (
        not envelope.ignore_result
        and backend_is_broker()
        and not pending_in_script(client, envelope)
    ):
        _forget_pending(envelope.id)  # written beside the call; enqueue.lua writes none then
    return holder.decode(errors="replace") if isinstance(holder, bytes) else str(holder)


def _forget_pending(task_id: str) -> None:
    """Delete the PENDING record the publish wrote for an id that was not sent (best effort).

    It would otherwise make ``AsyncResult(task_id).exists()`` true for a
    task that never runs, until the record expires.
    """
    try:
        get_broker().delete(keys.result(task_id))
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        logger.warning("could not delete the PENDING record of unsent task %s: %s", task_id, exc)


def release_of(
    envelope: Envelope, state: str, republish: Envelope | None
) -> tuple[str, str, int] | None:
    """What to do with the unique key of ``envelope``, which ends in ``state``.

    (key, task id, keep ms) for ``queue_release()``: keep 0 gives the key up;
    a retry (``republish``, due later) keeps it until then plus
    ``unique_for``. None when the message has no (usable) unique header.
    """
    found = envelope.headers.get(HEADER)
    if not isinstance(found, dict):
        return None
    key, unique_for = found.get("key"), found.get("for")
    if not isinstance(key, str) or not key:
        return None
    if state != states.RETRY or republish is None:
        return key, envelope.id, 0
    if isinstance(unique_for, bool) or not isinstance(unique_for, int | float):
        return None
    if not math.isfinite(unique_for) or unique_for <= 0:  # JSON allows Infinity and NaN
        return None
    wait = max(0.0, (republish.eta or 0.0) - time.time())
    return key, envelope.id, max(1, math.ceil((wait + float(unique_for)) * 1000))


def queue_release(pipe: Any, client: redis.Redis, release: tuple[str, str, int]) -> None:
    """Queue unique_release.lua for one ``release_of()`` on ``pipe`` (the worker's flush)."""
    key, task_id, keep_ms = release
    scripts.queue_evalsha(pipe, client, "unique_release", [key], [task_id, keep_ms])
