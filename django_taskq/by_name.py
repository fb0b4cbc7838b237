"""Sending a task by its name: ``send_task``, as Celery's ``app.send_task``.

For a caller that cannot import the task: a web project sending work to
workers of another codebase, or a task named in configuration. The message
is built as ``apply_async`` builds it (routes, the task's own defaults when
this process knows the task), and is always sent to Redis: as in Celery,
TASKQ_TASK_ALWAYS_EAGER does not apply, since the task may not exist here
to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_taskq.result import AsyncResult


def send_task(
    name: str,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncResult:
    """Send the task registered as ``name`` (here or only in the workers); return its result.

    ``options`` are ``apply_async``'s: countdown, eta, expires, queue,
    priority, task_id, headers, link, link_error, time limits, serializer,
    unique_key, unique_for and compression (docs/tasks.md, "Unique tasks";
    docs/serialization.md).
    """
    from django_taskq.signatures import task_for

    if not isinstance(name, str) or not name:
        raise TypeError(f"send_task: name must be a task's registered name, not {name!r}")
    if args is not None and not isinstance(args, list | tuple):
        raise TypeError(
            f"send_task({name!r}): args must be a list or tuple, not {type(args).__name__}"
        )
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"send_task({name!r}): kwargs must be a dict, not {type(kwargs).__name__}")
    task = task_for(name)
    serializer = options.pop("serializer", None)
    unique_key, unique_for = options.pop("unique_key", None), options.pop("unique_for", None)
    compression = options.pop("compression", None)
    envelope = task.build_envelope(args, kwargs, **options)
    if unique_key is not None or unique_for is not None or task.unique_for is not None:
        from django_taskq.unique import send_unique

        return send_unique(task, envelope, unique_key, unique_for, serializer, compression)
    return task.send_envelope(envelope, serializer, compression)
