"""Run one task call and turn what happened into an ``Outcome``.

The worker and eager mode share this code, so ``apply()`` behaves like a
worker: same retry, autoretry, signals and result encoding. What to do with
the outcome (store, ack, schedule the retry) is the caller's business.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from django_taskq import async_run, signals, states
from django_taskq import request as requests
from django_taskq.django_tasks import HEADER as DJANGO_TASK
from django_taskq.django_tasks import extended as django_extended
from django_taskq.exceptions import EncodeError, Reject, Retry, SoftTimeLimitExceeded
from django_taskq.messages import Envelope, dumps
from django_taskq.request import Request

if TYPE_CHECKING:
    from django_taskq.task import Task

logger = logging.getLogger("django_taskq.worker")

#: Return values that are always JSON: no trial encoding needed.
_JSON_SCALARS = frozenset({int, float, str, bool, type(None)})


@dataclass
class Outcome:
    """What one run of a task produced."""

    state: str
    value: Any = None
    exception: BaseException | None = None
    traceback: str | None = None
    retry_envelope: Envelope | None = None
    reject_reason: str | None = None
    runtime: float = 0.0
    #: Ids of the tasks the run sent (stored as the result's ``children``).
    children: list[str] | None = None


def exception_info(exc: BaseException) -> dict[str, Any]:
    """How an exception is stored: importable type name, message and args."""
    cls = type(exc)
    module = cls.__module__
    name = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    try:
        args: list[Any] | None = list(exc.args)
        dumps(args)
    except (TypeError, ValueError):
        args = None
    return {"exc_type": name, "exc_message": str(exc), "exc_args": args}


def result_record(
    envelope: Envelope, outcome: Outcome, hostname: str | None, compression: str | None = None
) -> str:
    """The JSON record stored under the task's result key.

    ``compression``: a successful task's value is stored compressed
    (codecs.compress_value) when its JSON is long enough.
    """
    if outcome.state == states.FAILURE or outcome.state == states.REVOKED:
        value: Any = (
            exception_info(outcome.exception)
            if outcome.exception is not None
            else {
                "exc_type": "django_taskq.exceptions.TaskRevokedError",
                "exc_message": outcome.reject_reason or "revoked",
                "exc_args": None,
            }
        )
    elif outcome.state == states.RETRY:
        value = exception_info(outcome.exception) if outcome.exception is not None else None
    else:
        value = outcome.value
        if compression and outcome.state == states.SUCCESS and type(value) not in _JSON_SCALARS:
            from django_taskq.codecs import compress_value

            value = compress_value(value, compression)
    record = {
        "status": outcome.state,
        "result": value,
        "traceback": outcome.traceback,
        "date_done": time.time(),
        "task": envelope.task,
        "retries": envelope.retries,
        "worker": hostname,
        "parent_id": envelope.parent_id,
        "root_id": envelope.root_id or envelope.id,
        "group_id": envelope.group_id,
    }
    if outcome.reject_reason:
        record["reason"] = outcome.reject_reason
    if outcome.children:
        record["children"] = outcome.children
    if envelope.headers and envelope.headers.get(DJANGO_TASK):
        # Django's TaskResult reads args, kwargs and times back (django_tasks.py).
        record.update(django_extended(envelope))
        if outcome.state != states.STARTED and outcome.runtime:
            record["date_started"] = record["date_done"] - outcome.runtime
    return dumps(record)


def execute(
    task: Task,
    envelope: Envelope,
    *,
    hostname: str | None,
    delivery_count: int = 1,
    eager: bool = False,
) -> Outcome:
    """Run ``task`` for ``envelope``; never raises, except the worker's own shutdown signals.

    Every exception the task raises, SystemExit and KeyboardInterrupt
    included, becomes its outcome. An ``async def`` task's coroutine runs
    to its end on this thread's loop (async_run.py); ``execute_async`` is
    the counterpart that awaits it instead, for a consumer's async lane.
    """
    request = _begin(task, envelope, hostname, delivery_count, eager)
    outcome: Outcome | None = None
    started = time.perf_counter()
    try:
        try:
            value = _call(task, envelope)
            if type(value) is CoroutineType:  # an async def task: run it on this thread's loop
                value = async_run.run(value, task.name)
        except Exception as exc:
            _autoretry(task, envelope, exc)
            raise
        outcome = _succeeded(task, value)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        # sys.exit() or a stray KeyboardInterrupt in a task is that task's
        # failure: letting it end the consumer would redeliver the message
        # forever. (A worker's own shutdown never raises these in a task.)
        outcome = _failed(task, envelope, request, exc)
    finally:
        elapsed = time.perf_counter() - started
        _leave(task, envelope, outcome)
    return _concluded(task, envelope, request, outcome, elapsed)


async def execute_async(
    task: Task,
    envelope: Envelope,
    *,
    hostname: str | None,
    delivery_count: int = 1,
    interrupted: Callable[[], BaseException | None] = lambda: None,
) -> Outcome:
    """``execute()`` for a task run as an asyncio task of a consumer's async lane.

    The same steps, signals, hooks and outcomes; the coroutine is awaited
    on the running loop, beside the lane's other tasks. The lane stops a
    run by cancelling it, after saying why in what ``interrupted()``
    returns: ``SoftTimeLimitExceeded`` (the run fails with it if the
    cancellation ends it), ``TimeLimitExceeded`` (it fails with it,
    whatever it did after the cancellation) or ``Terminated`` (raised, as
    from ``execute()``: revoke(terminate=True)).
    """
    request = _begin(task, envelope, hostname, delivery_count, False)
    outcome: Outcome | None = None
    started = time.perf_counter()
    try:
        try:
            value = _call(task, envelope)
            if type(value) is CoroutineType:
                try:
                    value = await value
                except asyncio.CancelledError as cancelled:
                    reason = interrupted()
                    if reason is None:
                        raise RuntimeError(
                            f"{task.name} ended with asyncio.CancelledError that no time "
                            "limit or revoke sent (a cancellation from inside the task)"
                        ) from cancelled
                    raise reason from None
            reason = interrupted()
            if reason is not None and not isinstance(reason, SoftTimeLimitExceeded):
                raise reason  # it outlived its hard limit (or terminate) by swallowing it
        except Exception as exc:
            _autoretry(task, envelope, exc)
            raise
        outcome = _succeeded(task, value)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        outcome = _failed(task, envelope, request, exc)
    finally:
        elapsed = time.perf_counter() - started
        _leave(task, envelope, outcome)
    return _concluded(task, envelope, request, outcome, elapsed)


def _begin(
    task: Task, envelope: Envelope, hostname: str | None, delivery_count: int, eager: bool
) -> Request:
    """Make the run's request current and send ``task_prerun``."""
    request = requests.Request.from_envelope(
        envelope, hostname=hostname, delivery_count=delivery_count, eager=eager
    )
    requests.push(request)
    signals.send(
        signals.task_prerun,
        task,
        task_id=envelope.id,
        task=task,
        args=envelope.args,
        kwargs=envelope.kwargs,
    )
    return request


def _call(task: Task, envelope: Envelope) -> Any:
    """``before_start``, then the function: its value (a coroutine for an async def task)."""
    args, kwargs = envelope.args, envelope.kwargs
    if "before_start" in task.hooks:
        task.before_start(envelope.id, args, kwargs)
    return task.run(task, *args, **kwargs) if task.bind else task.run(*args, **kwargs)


def _autoretry(task: Task, envelope: Envelope, exc: Exception) -> None:
    """Raise the task's Retry if ``exc`` is one its ``autoretry_for`` retries."""
    if isinstance(exc, (Retry, Reject)):
        return
    if _should_autoretry(task, exc):
        task.retry(exc=exc, countdown=task.backoff_countdown(envelope.retries))


def _succeeded(task: Task, value: Any) -> Outcome:
    """The outcome of a run that returned ``value``; EncodeError if it cannot be stored."""
    try:
        if type(value) not in _JSON_SCALARS:
            dumps(value)
    except (TypeError, ValueError) as exc:
        raise EncodeError(
            f"{task.name} returned a {type(value).__name__}, which cannot be stored as "
            f"JSON ({exc}); return an id, a dict or a list instead"
        ) from exc
    return Outcome(states.SUCCESS, value=value)


def _failed(task: Task, envelope: Envelope, request: Request, exc: BaseException) -> Outcome:
    """What a run that raised ``exc``: a retry, a reject or a failure (and its signal)."""
    if isinstance(exc, Retry):
        reason = exc.exc if exc.exc is not None else exc
        outcome = Outcome(
            states.RETRY,
            exception=exc.exc,
            traceback=_format(exc.exc) if exc.exc is not None else None,
            retry_envelope=getattr(exc, "envelope", None),
        )
        signals.send(
            signals.task_retry, task, request=request, reason=reason, einfo=outcome.traceback
        )
        return outcome
    if isinstance(exc, Reject):
        return Outcome(
            states.FAILURE,
            exception=exc,
            traceback=_format(exc),
            reject_reason=f"rejected by the task: {exc.reason}",
        )
    outcome = Outcome(states.FAILURE, exception=exc, traceback=_format(exc))
    signals.send(
        signals.task_failure,
        task,
        task_id=envelope.id,
        exception=exc,
        args=envelope.args,
        kwargs=envelope.kwargs,
        traceback=outcome.traceback,
        einfo=outcome.traceback,
    )
    return outcome


def _leave(task: Task, envelope: Envelope, outcome: Outcome | None) -> None:
    """The hooks of a run that has an outcome (with its request still current), then pop it.

    A run stopped by the worker (Terminated, a shutdown) has no outcome and no hooks.
    """
    try:
        if task.hooks and outcome is not None:
            _call_hooks(task, envelope, outcome)  # with self.request still set, as in Celery
    finally:
        requests.pop()


def _concluded(
    task: Task, envelope: Envelope, request: Request, outcome: Outcome | None, elapsed: float
) -> Outcome:
    """Fill in the run's time and children and send ``task_success`` and ``task_postrun``."""
    assert outcome is not None  # every way out of the run set it, or raised
    outcome.runtime = elapsed
    outcome.children = request.children
    if outcome.state == states.SUCCESS:
        signals.send(signals.task_success, task, result=outcome.value)
    signals.send(
        signals.task_postrun,
        task,
        task_id=envelope.id,
        task=task,
        args=envelope.args,
        kwargs=envelope.kwargs,
        retval=outcome.value if outcome.state == states.SUCCESS else outcome.exception,
        state=outcome.state,
    )
    return outcome


def _call_hooks(task: Task, envelope: Envelope, outcome: Outcome) -> None:
    """The overridden hooks of ``task`` for this run's outcome, then ``after_return``.

    A hook that raises is logged and does not change the outcome (the
    result is what the task did, not what a hook did after it).
    """
    args, kwargs, task_id = envelope.args, envelope.kwargs, envelope.id
    state = outcome.state
    calls: list[tuple[str, tuple[Any, ...]]] = []
    if state == states.SUCCESS:
        calls.append(("on_success", (outcome.value, task_id, args, kwargs)))
    elif state == states.RETRY:
        calls.append(("on_retry", (outcome.exception, task_id, args, kwargs, outcome.traceback)))
    else:
        calls.append(("on_failure", (outcome.exception, task_id, args, kwargs, outcome.traceback)))
    retval = outcome.value if state == states.SUCCESS else outcome.exception
    calls.append(("after_return", (state, retval, task_id, args, kwargs, outcome.traceback)))
    for name, call_args in calls:
        if name not in task.hooks:
            continue
        try:
            getattr(task, name)(*call_args)
        # sys.exit() in a hook is the hook's error, as in a task's body: never the worker's end.
        except (Exception, SystemExit, KeyboardInterrupt):
            logger.exception(
                "%s.%s of task %s[%s] raised", type(task).__name__, name, task.name, task_id
            )


def _should_autoretry(task: Task, exc: Exception) -> bool:
    if not task.autoretry_for or isinstance(exc, SoftTimeLimitExceeded):
        return False
    if task.dont_autoretry_for and isinstance(exc, task.dont_autoretry_for):
        return False
    return isinstance(exc, task.autoretry_for)


def _format(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    return "".join(tb.format_exception(type(exc), exc, exc.__traceback__))


def run_eager(task: Task, envelope: Envelope) -> Outcome:
    """Run a call inline, retries included (their countdown is not waited for)."""
    from django_taskq.followups import after_finish

    while True:
        outcome = execute(task, envelope, hostname="eager", eager=True)
        if outcome.state == states.RETRY and outcome.retry_envelope is not None:
            envelope = outcome.retry_envelope
            if envelope.task != task.name:  # Task.replace(): another task goes on
                from django_taskq.signatures import task_for

                task = task_for(envelope.task)
            continue
        after_finish(envelope, outcome, eager=True)
        return outcome
