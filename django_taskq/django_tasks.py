"""Django's tasks framework (``django.tasks``, Django 6.0+) on django_taskq's own machinery.

A ``@task`` function of a project whose ``TASKS`` backend is
``django_taskq.backends.TaskqBackend`` becomes, when it is defined, a
django_taskq task registered under the function's import path (DESIGN 18:
a front door, not a second system). ``enqueue()`` sends it through that
task's ``apply_async``: the same envelope, queues, delivery guarantees,
history, metrics and worker as a ``@shared_task``. Its result is the same
result record, read back as a ``TaskResult``.

What this module adds to the plain machinery:

- ``DjangoTask``, the backend's ``task_class``: Django's ``Task`` plus
  django_taskq's options (time limits, retries, rate limit), which Django
  6.1's ``@task(**kwargs)`` passes on;
- ``runner()``: what the worker calls, which sends Django's ``task_started``
  and ``task_finished`` signals and gives a ``takes_context`` function its
  ``TaskContext``;
- the result record of a Django task is extended (args, kwargs, when it
  was enqueued and started, attempts; ``EXTENDED``), so ``get_result()``
  can fill every ``TaskResult`` field;
- ``load()``: a worker that meets a Django task it has not imported (its
  function lives outside ``tasks.py``) imports it by its path, but only a
  path inside an installed app, and only for a message marked as a Django
  task (``HEADER``). That is the one place a worker imports what a message
  names; a plain ``@shared_task`` name is only ever looked up.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django_taskq import states
from django_taskq.registry import registry

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.task import Task as TaskqTask

#: Header of a message sent by the Django tasks backend: the backend's alias.
HEADER = "django_task"

#: django_taskq options a ``@task(...)`` may give on Django 6.1 (fields of DjangoTask).
OPTIONS = (
    "time_limit",
    "soft_time_limit",
    "max_retries",
    "default_retry_delay",
    "autoretry_for",
    "dont_autoretry_for",
    "retry_backoff",
    "retry_backoff_max",
    "retry_jitter",
    "rate_limit",
    "expires",
    "acks_late",
)

#: Django's priority range, and how it maps onto django_taskq's 0..9 (9 runs first).
MIN_PRIORITY, MAX_PRIORITY = -100, 100


def priority_of(priority: int) -> int:
    """django_taskq's priority (0..9) of a Django priority (-100..100).

    Monotonic, both ends kept (-100 -> 0, 100 -> 9), and Django's default 0
    is django_taskq's default 5: round((priority + 100) * 9 / 200), halves up.
    """
    return int((priority - MIN_PRIORITY) * 9 / (MAX_PRIORITY - MIN_PRIORITY) + 0.5)


def extended(envelope: Envelope) -> dict[str, Any]:
    """The fields a Django task's result records add (none for other tasks)."""
    if not envelope.headers or not envelope.headers.get(HEADER):
        return {}
    return {"args": envelope.args, "kwargs": envelope.kwargs, "date_sent": envelope.sent_at}


def _module_in_installed_app(path: str) -> bool:
    from django.apps import apps

    module = path.rpartition(".")[0]
    return any(
        module == config.name or module.startswith(config.name + ".")
        for config in apps.get_app_configs()
    )


def load(envelope: Envelope) -> TaskqTask | None:
    """The task of a Django task message not registered yet: import its function's module.

    None unless the message is marked as a Django task, its name is a path
    inside an installed app, and importing it registered that name.
    """
    name = envelope.task
    if not (envelope.headers and envelope.headers.get(HEADER)) or not _module_in_installed_app(
        name
    ):
        return None
    from django.utils.module_loading import import_string

    try:
        import_string(name)
    except (ImportError, AttributeError):
        return None
    return registry.get(name) if name in registry else None


def _when(stamp: Any) -> dt.datetime | None:
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return dt.datetime.fromtimestamp(stamp, dt.UTC)
    return None


def task_result(
    django_task: Any,
    task_id: str,
    record: dict[str, Any] | None,
    attempts: Sequence[bytes | str] | None = None,
) -> Any:
    """A ``TaskResult`` of ``django_task`` from a result record (None: just enqueued).

    ``attempts``: the entries of the task's attempts list (attempts.py), for
    one error per failed attempt and one worker id per attempt. Without
    them (a record written before the list existed, or its list trimmed
    away), the final failure is the one error and the last worker stands
    for every attempt.
    """
    from django_taskq.attempts import read
    from django_taskq.tasks_framework import part

    base = part("base")
    TaskError, TaskResult, TaskResultStatus = base.TaskError, base.TaskResult, base.TaskResultStatus

    record = record or {}
    state = str(record.get("status") or states.PENDING)
    status = {
        states.STARTED: TaskResultStatus.RUNNING,
        states.SUCCESS: TaskResultStatus.SUCCESSFUL,
        states.FAILURE: TaskResultStatus.FAILED,
        states.REVOKED: TaskResultStatus.FAILED,
    }.get(state, TaskResultStatus.READY)
    done = _when(record.get("date_done"))
    started = _when(record.get("date_started"))
    if state == states.STARTED:
        started = done
    elif started is None and state in (states.SUCCESS, states.FAILURE) and done is not None:
        started = done  # a record written before date_started was kept
    tried = read(attempts or ())
    errors = [TaskError(exception_class_path=p, traceback=t) for p, t in tried.errors]
    # A revoke, or a failure whose write carried no entry, adds the record's own error.
    if status == TaskResultStatus.FAILED and (state != states.FAILURE or not tried.ends_in_failure):
        found = record.get("result")
        info: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = str(info.get("exc_type") or "django_taskq.exceptions.TaskRevokedError")
        if "." not in kind:
            kind = f"builtins.{kind}"
        errors.append(TaskError(exception_class_path=kind, traceback=record.get("traceback") or ""))
    worker_ids = tried.workers
    if not worker_ids and (worker := record.get("worker")):
        retries = record.get("retries")
        runs = int(retries) + 1 if isinstance(retries, int) and not isinstance(retries, bool) else 1
        worker_ids = [str(worker)] * int(record.get("attempts") or (runs if started else 0))
    finished = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    result: Any = TaskResult(
        task=django_task,
        id=task_id,
        status=status,
        enqueued_at=_when(record.get("date_sent")),
        started_at=started,
        finished_at=done if status in finished else None,
        last_attempted_at=started,
        args=args if isinstance(args := record.get("args"), list) else [],
        kwargs=kwargs if isinstance(kwargs := record.get("kwargs"), dict) else {},
        backend=django_task.backend,
        errors=errors,
        worker_ids=worker_ids,
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", record.get("result"))
    return result


def runner(django_task: Any) -> Callable[..., Any]:
    """The function the worker runs for ``django_task`` (a bound django_taskq task).

    It sends ``task_started``, calls the function (``async def`` ones on
    an event loop, as Django's ``Task.call`` does), sends ``task_finished``
    unless the failure is going to be retried, and returns the value as
    Django's backends do (``normalize_json``).
    """
    from django_taskq.tasks_framework import part

    base, signals = part("base"), part("signals")
    TaskContext, TaskError, TaskResultStatus = (
        base.TaskContext,
        base.TaskError,
        base.TaskResultStatus,
    )
    task_finished, task_started = signals.task_finished, signals.task_started
    from django_taskq.tasks_framework import normalize_json

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        attempts = int(request.retries) + max(1, int(request.delivery_count))
        now = time.time()
        record = {
            "status": states.STARTED,
            "date_done": now,
            "worker": request.hostname or "",
            "attempts": attempts,
            "args": list(args),
            "kwargs": dict(kwargs),
            "date_sent": request.sent_at,
        }
        result = task_result(django_task, str(request.id), record)
        sender = type(django_task.get_backend())
        task_started.send(sender=sender, task_result=result)
        try:
            if django_task.takes_context:
                value = django_task.call(TaskContext(task_result=result), *args, **kwargs)
            else:
                value = django_task.call(*args, **kwargs)
            value = normalize_json(value)
        except BaseException as exc:
            if not _will_retry(self, exc):
                cls = type(exc)
                import traceback

                object.__setattr__(result, "status", TaskResultStatus.FAILED)
                object.__setattr__(result, "finished_at", dt.datetime.now(dt.UTC))
                result.errors.append(
                    TaskError(
                        exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
                        traceback="".join(traceback.format_exception(exc)),
                    )
                )
                task_finished.send(sender=sender, task_result=result)
            raise
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "finished_at", dt.datetime.now(dt.UTC))
        object.__setattr__(result, "_return_value", value)
        task_finished.send(sender=sender, task_result=result)
        return value

    # delay() checks a call against the function's own parameters (not the
    # runner's *args), naming a wrong argument before anything is sent.
    own = list(inspect.signature(django_task.func).parameters.values())
    if django_task.takes_context:
        own = own[1:]
    first = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    run.__signature__ = inspect.Signature([first, *own])  # type: ignore[attr-defined]
    run.__module__ = django_task.func.__module__
    run.__qualname__ = django_task.func.__qualname__
    run.__name__ = django_task.func.__name__
    run.__doc__ = django_task.func.__doc__
    return run


def _will_retry(task: Any, exc: BaseException) -> bool:
    """Whether django_taskq retries this failure (autoretry_for, retries left)."""
    if not task.autoretry_for or not isinstance(exc, task.autoretry_for):
        return False
    if task.dont_autoretry_for and isinstance(exc, task.dont_autoretry_for):
        return False
    limit = task.max_retries
    return limit is None or int(task.request.retries) < int(limit)


def register(django_task: Any, options: dict[str, Any]) -> TaskqTask:
    """Register (again) the django_taskq task that runs ``django_task``; returns it."""
    from django_taskq.task import Task

    given = {k: v for k, v in options.items() if v is not None}
    taskq_task = Task(
        runner(django_task),
        name=django_task.module_path,
        bind=True,
        track_started=True,
        **given,
    )
    return registry.register(taskq_task)
