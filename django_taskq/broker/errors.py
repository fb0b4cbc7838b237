"""One way to say that Redis failed: ``BrokerUnavailable``, with a message a person can act on.

redis-py raises ``redis.ConnectionError`` and ``redis.TimeoutError``; none of
them reaches a caller of django_taskq. ``translating_errors(what)`` turns them
into ``BrokerUnavailable`` naming what failed, the Redis (password hidden)
and the setting to check; ``with_publish_retry`` (broker/publish.py) builds
the same message with ``unavailable()``, adding whether the task was sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

import redis

from django_taskq.broker import deadline
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import BrokerUnavailable

#: The errors that mean "Redis is not there or did not answer".
REDIS_DOWN: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)

Uses = Literal["broker", "results", "both"]

#: How many ids a message lists before it points at ``.task_ids``.
_IDS_SHOWN = 3


def _broker() -> tuple[str, str]:
    from django_taskq.broker.connection import broker_url, redact

    url = redact(broker_url())
    if taskq_settings.BROKER_URL:
        return url, taskq_settings.origin("BROKER_URL")
    if taskq_settings.REDIS_CACHE_ALIAS:
        return url, f"the cache TASKQ_REDIS_CACHE_ALIAS={taskq_settings.REDIS_CACHE_ALIAS!r}"
    return url, "TASKQ_BROKER_URL (not set: the default is used)"


def _where(uses: Uses) -> tuple[str, str]:
    """(redacted URL(s), setting(s) to check) of the Redis ``uses`` names."""
    from django_taskq.broker.connection import redact

    url, setting = _broker()
    backend = taskq_settings.RESULT_BACKEND
    if uses == "broker" or not backend:
        return url, setting
    results = redact(str(backend))
    if uses == "results":
        return results, "TASKQ_RESULT_BACKEND"
    return f"{url} (results: {results})", f"{setting} and TASKQ_RESULT_BACKEND"


def _what_happened(exc: BaseException) -> str:
    if isinstance(exc, redis.TimeoutError):
        return "did not answer in time"
    return "is unreachable"


def _sent(task_ids: Sequence[str], maybe_sent: bool) -> str:
    """The sentence that tells the caller what was sent and what to do."""
    if not task_ids:
        if maybe_sent:
            return "It perhaps reached Redis; doing it again is safe."
        return "Nothing reached Redis."
    if len(task_ids) == 1:
        task_id = task_ids[0]
        if not maybe_sent:
            return f"The task was not sent (its id was {task_id}); calling again sends it."
        return (
            f"The task was perhaps sent; its id is {task_id}. To be sure it runs, send it "
            f"again with task_id={task_id!r}: a second send of the same id is not queued twice."
        )
    shown = ", ".join(task_ids[:_IDS_SHOWN])
    if len(task_ids) > _IDS_SHOWN:
        shown += f", ... ({len(task_ids)} in .task_ids)"
    if not maybe_sent:
        return f"The {len(task_ids)} tasks were not sent; calling again sends them."
    return (
        f"The {len(task_ids)} tasks were perhaps sent; their ids are {shown}. To be sure "
        "they run, send them again with the same task ids: a second send of an id is not "
        "queued twice."
    )


def unavailable(
    what: str,
    exc: BaseException,
    *,
    uses: Uses = "broker",
    attempts: int | None = None,
    elapsed: float | None = None,
    task_ids: Sequence[str] = (),
    maybe_sent: bool = True,
    sending: bool = False,
) -> BrokerUnavailable:
    """A BrokerUnavailable for ``what`` failing with ``exc`` (one line, ready to print)."""
    url, setting = _where(uses)
    tried = ""
    if attempts is not None:
        tried = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        if elapsed is not None:
            tried += f" in {elapsed:.1f}s"
    detail = str(exc).replace("\n", " ").strip() or type(exc).__name__
    message = f"cannot {what}: Redis at {url} {_what_happened(exc)}{tried} ({detail})."
    if sending:
        message += " " + _sent(task_ids, maybe_sent)
    message += f" Check that Redis is running and {setting} is right"
    if sending:
        message += (
            f"; TASKQ_PUBLISH_TIMEOUT ({float(taskq_settings.PUBLISH_TIMEOUT):g}s) bounds "
            "the call, TASKQ_PUBLISH_RETRY spaces the retries"
        )
    message += "."
    return BrokerUnavailable(message, task_ids=task_ids, maybe_sent=maybe_sent)


#: True inside translating_errors(): an inner one leaves the message to the outer.
_translating: ContextVar[bool] = ContextVar("taskq_translating", default=False)


@contextmanager
def translating_errors(what: str, *, uses: Uses = "broker") -> Iterator[None]:
    """Raise BrokerUnavailable, not redis-py's errors, when Redis fails in the block.

    ``what`` completes "cannot ...", e.g. ``"read the result of task <id>"``.
    Also usable as a decorator (``@translating_errors("inspect queues")``).
    Nested, the outermost names what failed (``inspect()`` lists queues).
    """
    if _translating.get():
        yield
        return
    token = _translating.set(True)
    try:
        with deadline.tracking() as progress:
            try:
                yield
            except REDIS_DOWN as exc:
                raise unavailable(what, exc, uses=uses, maybe_sent=progress.maybe_sent) from exc
    finally:
        _translating.reset(token)
