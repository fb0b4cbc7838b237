"""``TaskqBackend``: Django's tasks framework (Django 6.0+) sending through django_taskq.

.. code-block:: python

    TASKS = {
        "default": {
            "BACKEND": "django_taskq.backends.TaskqBackend",
            "QUEUES": ["default", "emails"],  # optional; empty: any queue
            "OPTIONS": {"BROKER_URL": "redis://127.0.0.1:6379/0"},  # optional
        }
    }

``OPTIONS`` hold django_taskq settings without their ``TASKQ_`` prefix
(backend_options.py), for a project that keeps its task configuration in
``TASKS``.

A Django ``@task`` then runs on ``manage.py taskq_worker`` beside the
project's ``@shared_task`` functions, with the same queues, delivery
guarantees, history and metrics (docs/django-tasks.md). How a Django task
maps onto django_taskq:

- ``queue_name`` is the django_taskq queue, ``run_after`` the ETA;
- ``priority`` -100..100 maps onto 0..9, monotonic, 0 onto the default 5
  (``django_tasks.priority_of``);
- on Django 6.1, ``@task(time_limit=..., max_retries=..., autoretry_for=...)``
  and the other options of ``django_tasks.OPTIONS`` set the task's
  django_taskq options;
- ``get_result()`` reads the task's result record; an unknown id (or one
  whose record has expired, after TASKQ_RESULT_EXPIRES) raises
  ``TaskResultDoesNotExist``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from django_taskq import django_tasks
from django_taskq.registry import registry
from django_taskq.tasks_framework import first, part

if TYPE_CHECKING:
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task as DjangoBaseTask
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued
else:  # django.tasks on Django 6.0+, the django-tasks backport on Django 5.2
    BaseTaskBackend = part("backends.base").BaseTaskBackend
    DjangoBaseTask = part("base").Task
    InvalidTask = first("exceptions", "InvalidTask", "InvalidTaskError")
    TaskResultDoesNotExist = part("exceptions").TaskResultDoesNotExist
    task_enqueued = part("signals").task_enqueued


@dataclass(frozen=True, slots=True, kw_only=True)
class DjangoTask(DjangoBaseTask):  # type: ignore[type-arg]  # generic in the stubs only
    """Django's ``Task`` with django_taskq's options (``@task(time_limit=30)`` on Django 6.1).

    Making one (``@task``, ``.using()``) registers the django_taskq task
    that runs it, under the function's import path.
    """

    time_limit: float | None = None
    soft_time_limit: float | None = None
    max_retries: int | None = None
    default_retry_delay: float | None = None
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: bool | int | None = None
    retry_backoff_max: float | None = None
    retry_jitter: bool | None = None
    rate_limit: str | None = None
    expires: float | None = None
    acks_late: bool | None = None

    def __post_init__(self) -> None:
        super(DjangoTask, self).__post_init__()  # the backend's validate_task
        django_tasks.register(self, self.taskq_options())

    def taskq_options(self) -> dict[str, Any]:
        """The django_taskq options this task sets (those left at their default are not)."""
        own = {f.name for f in fields(DjangoBaseTask)}
        found: dict[str, Any] = {}
        for f in fields(self):
            if f.name in own:
                continue
            value = getattr(self, f.name)
            if value is not None and value != ():
                found[f.name] = value
        return found


class TaskqBackend(BaseTaskBackend):  # type: ignore[misc]
    """The ``TASKS`` backend that sends Django tasks through django_taskq (module doc)."""

    task_class = DjangoTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        from django_taskq.backend_options import validate

        # OPTIONS are django_taskq settings (BROKER_URL, ...), read by conf.py.
        validate(alias, params.get("OPTIONS", {}))
        # Django's default is {"default"}; an explicit empty list means any queue.
        if "QUEUES" in params and not params["QUEUES"]:
            self.queues = set()

    def validate_task(self, task: Any) -> None:
        """Django's checks first, then django_taskq's: a usable queue name and options."""
        super().validate_task(task)
        from django_taskq.broker.keys import QUEUE_NAME

        if not isinstance(task.queue_name, str) or not QUEUE_NAME.match(task.queue_name):
            raise InvalidTask(
                f"queue_name {task.queue_name!r} of task {task.module_path}: a queue name is "
                "1 to 200 characters without braces or whitespace"
            )
        if not isinstance(task, DjangoTask):
            return
        unknown = set(task.taskq_options()) - set(django_tasks.OPTIONS)
        if unknown:  # pragma: no cover - the dataclass fields are the options
            raise InvalidTask(f"unknown option(s) {sorted(unknown)} of task {task.module_path}")

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """Send ``task`` with ``args`` and ``kwargs``; returns its READY ``TaskResult``."""
        self.validate_task(task)
        taskq_task = self._taskq_task(task)
        eta = task.run_after
        result = taskq_task.apply_async(
            list(args),
            dict(kwargs),
            queue=task.queue_name,
            priority=django_tasks.priority_of(task.priority),
            eta=eta,
            headers={django_tasks.HEADER: self.alias},
        )
        enqueued = django_tasks.task_result(
            task,
            result.id,
            {
                "status": "PENDING",
                "args": list(args),
                "kwargs": dict(kwargs),
                "date_sent": dt.datetime.now(dt.UTC).timestamp(),
            },
        )
        task_enqueued.send(type(self), task_result=enqueued)
        return enqueued

    def get_result(self, result_id: str) -> Any:
        """The ``TaskResult`` of ``result_id``; TaskResultDoesNotExist if nothing is known of it."""
        from django_taskq.broker import errors, keys
        from django_taskq.broker.connection import get_backend
        from django_taskq.result import decode_record

        task_id = str(result_id)
        # The record and its attempts list (attempts.py) in one round trip; one tag, one slot.
        with errors.translating_errors(f"read the result of task {task_id}", uses="results"):
            pipe = get_backend().pipeline(transaction=False)
            pipe.get(keys.result(task_id))
            pipe.lrange(keys.attempts(task_id), 0, -1)
            raw, entries = pipe.execute()
        if raw is None:
            raise TaskResultDoesNotExist(result_id)
        record = decode_record(task_id, raw)
        task = self._django_task(str(record.get("task") or ""), result_id)
        return django_tasks.task_result(task, task_id, record, entries)

    def _taskq_task(self, task: Any) -> Any:
        name = task.module_path
        if name not in registry:
            # A plain django.tasks.Task given by hand: register it as DjangoTask would.
            return django_tasks.register(task, {})
        return registry.get(name)

    def _django_task(self, name: str, result_id: str) -> Any:
        from django.utils.module_loading import import_string

        try:
            found = import_string(name)
        except (ImportError, AttributeError) as exc:
            raise TaskResultDoesNotExist(
                f"{result_id}: its task {name!r} cannot be imported here"
            ) from exc
        if not isinstance(found, DjangoBaseTask):
            raise TaskResultDoesNotExist(f"{result_id}: {name!r} is not a Django task")
        return found


__all__ = ["DjangoTask", "TaskqBackend"]
