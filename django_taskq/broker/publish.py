"""Publish messages: ready now into a stream, or later into the delayed set.

``publish()`` is the single way a message enters Redis, for ``delay()``,
retries, beat (with its at-most-once key) and workflows. Enqueueing many
messages at once goes through ``publish_many()``, one pipelined round trip.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import redis

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.connection import backend_is_broker, get_backend, get_broker
from django_taskq.broker.scripts import script
from django_taskq.conf import taskq_settings
from django_taskq.messages import Envelope, dumps

logger = logging.getLogger("django_taskq.publish")

T = TypeVar("T")


def with_publish_retry(what: str, func: Callable[[], T], *, task_ids: Sequence[str] = ()) -> T:
    """Run ``func``; on a connection error retry per TASKQ_PUBLISH_RETRY.

    The whole call, retries and their waits included, ends within
    TASKQ_PUBLISH_TIMEOUT (or sooner, inside an enclosing publish_deadline()):
    every connect, write and read of an attempt is cut to the time left, and
    no retry starts once it is spent. Then BrokerUnavailable is raised,
    carrying ``task_ids`` and whether an attempt may have reached Redis.
    """
    policy = taskq_settings.PUBLISH_RETRY or {}
    max_retries = int(policy.get("max_retries", 3))
    interval = float(policy.get("interval_start", 0.1))
    step = float(policy.get("interval_step", 0.2))
    interval_max = float(policy.get("interval_max", 1.0))
    from django_taskq.broker.deadline import tracking
    from django_taskq.broker.errors import unavailable

    started = time.monotonic()
    attempts = 0
    with publish_deadline() as end, tracking() as progress:
        while True:
            try:
                return func()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                attempts += 1
                # Retry only if the wait still leaves time for an attempt.
                if attempts > max_retries or end - time.monotonic() <= interval:
                    raise unavailable(
                        what,
                        exc,
                        attempts=attempts,
                        elapsed=time.monotonic() - started,
                        task_ids=task_ids,
                        maybe_sent=progress.maybe_sent,
                        sending=True,
                    ) from exc
                logger.warning("%s failed (%s); retrying in %.2fs", what, exc, interval)
                time.sleep(interval)
                interval = min(interval + step, interval_max)


def publish_deadline() -> AbstractContextManager[float]:
    """A block within which every send must finish: TASKQ_PUBLISH_TIMEOUT from now.

    ``with_publish_retry`` opens one; a caller that makes more than one
    round trip for one call (the message, then PENDING records on a separate
    result Redis) opens it around all of them, so they share the bound.
    """
    from django_taskq.broker.deadline import deadline

    return deadline(float(taskq_settings.PUBLISH_TIMEOUT))


def _pending_records_best_effort(
    write: Callable[[list[Envelope]], None],
) -> Callable[[list[Envelope]], None]:
    """Log, not raise, when PENDING records on a separate result Redis cannot be written.

    The messages are queued by then: raising would tell the caller that a
    task which will run was not sent. Within the caller's publish deadline.
    """

    @functools.wraps(write)
    def wrapper(envelopes: list[Envelope]) -> None:
        try:
            with publish_deadline():
                write(envelopes)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning(
                "%d task(s) were queued (%s), but their PENDING records could not be "
                "written to the result Redis (%s): exists() reads False for them until a "
                "worker stores a state. Check TASKQ_RESULT_BACKEND.",
                len(envelopes),
                ", ".join(e.id for e in envelopes[:3]) + (", ..." if len(envelopes) > 3 else ""),
                exc,
            )

    return wrapper


def pending_record(envelope: Envelope) -> str:
    return dumps(
        {
            "status": states.PENDING,
            "result": None,
            "traceback": None,
            "date_done": None,
            "task": envelope.task,
            "parent_id": envelope.parent_id,
            "root_id": envelope.root_id,
        }
    )


def _publish_args(
    envelope: Envelope, body: str, once_key: str | None, once_ttl: float
) -> tuple[list[str], list[Any]]:
    due_ms = 0
    if envelope.eta is not None and envelope.eta > time.time():
        due_ms = int(envelope.eta * 1000)
    record_pending = not envelope.ignore_result and backend_is_broker()
    ttl_ms = int(float(taskq_settings.RESULT_EXPIRES) * 1000) if record_pending else 0
    stream = keys.stream(envelope.queue, envelope.priority)
    script_keys = [
        stream,
        keys.delayed(),
        keys.result(envelope.id),
        keys.queues(),
        once_key or keys.result(envelope.id),
    ]
    args: list[Any] = [
        body,
        envelope.id,
        due_ms,
        ttl_ms,
        pending_record(envelope) if ttl_ms else "",
        int(once_ttl * 1000) if once_key else 0,
        envelope.queue,
        keys.delayed_wake(),
    ]
    return script_keys, args


def publish(
    envelope: Envelope,
    *,
    once_key: str | None = None,
    once_ttl: float = 0,
    pipe: Any = None,
    serializer: str | None = None,
) -> bool:
    """Put one message on its queue (or in the delayed set if it has an ETA).

    With ``once_key``, publish only if that key did not exist (set together
    with the publish, atomically); returns False for such a duplicate. With
    ``pipe``, the command is queued on that pipeline and True is returned.
    """
    body = envelope.encode(serializer or taskq_settings.TASK_SERIALIZER)
    script_keys, args = _publish_args(envelope, body, once_key, once_ttl)
    if pipe is not None:
        script(get_broker(), "enqueue")(keys=script_keys, args=args, client=pipe)
        _record_pending_elsewhere([envelope])
        return True
    client = get_broker()
    enqueue = script(client, "enqueue")
    done = with_publish_retry(
        f"send task {envelope.task}",
        lambda: enqueue(keys=script_keys, args=args, client=client),
        task_ids=[envelope.id],
    )
    _record_pending_elsewhere([envelope])
    return bool(done)


def publish_many(envelopes: Iterable[Envelope]) -> int:
    """Publish many messages in one pipelined round trip; returns the count."""
    client = get_broker()
    enqueue = script(client, "enqueue")
    serializer = taskq_settings.TASK_SERIALIZER
    prepared = []
    for envelope in envelopes:
        body = envelope.encode(serializer)
        prepared.append((envelope, *_publish_args(envelope, body, None, 0)))

    def send() -> int:
        pipe = client.pipeline(transaction=False)
        for _, script_keys, args in prepared:
            enqueue(keys=script_keys, args=args, client=pipe)
        pipe.execute()
        return len(prepared)

    count = with_publish_retry(
        f"send {len(prepared)} tasks", send, task_ids=[e.id for e, *_ in prepared]
    )
    _record_pending_elsewhere([envelope for envelope, *_ in prepared])
    return count


@_pending_records_best_effort
def _record_pending_elsewhere(envelopes: list[Envelope]) -> None:
    """Write PENDING records, in one round trip, when results live on another Redis.

    (On the broker itself enqueue.lua writes them in the publishing step.)
    """
    if backend_is_broker():
        return
    wanted = [e for e in envelopes if not e.ignore_result]
    if not wanted:
        return
    ttl = int(float(taskq_settings.RESULT_EXPIRES) * 1000)
    pipe = get_backend().pipeline(transaction=False)
    for envelope in wanted:
        pipe.set(keys.result(envelope.id), pending_record(envelope), px=ttl)
    pipe.execute()
