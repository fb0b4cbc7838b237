"""``get_task_logger``: a logger whose records say which task wrote them.

Celery users write ``logger = get_task_logger(__name__)`` at the top of
``tasks.py``. Each record logged through it while a task runs carries the
task's name and id, as record attributes ``task_name`` and ``task_id`` (for
a format string such as ``%(task_name)s[%(task_id)s]``) and in front of
the message (``tasks.add[3f2a...]: ...``), so they show under any format.
Outside a task the attributes are ``"???"`` and the message is left as is.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

#: task_name and task_id of a record logged outside any task.
UNKNOWN = "???"


class TaskLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the running task's name and id to each record."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        from django_taskq.request import current_request

        request = current_request()
        name = getattr(request, "task", None) or UNKNOWN
        task_id = getattr(request, "id", None) or UNKNOWN
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("task_name", name)
        extra.setdefault("task_id", task_id)
        kwargs["extra"] = extra
        if request is not None:
            msg = f"{name}[{task_id}]: {msg}"
        return msg, kwargs


def get_task_logger(name: str) -> TaskLoggerAdapter:
    """The logger ``name`` (``logging.getLogger``), adding the running task to each record."""
    return TaskLoggerAdapter(logging.getLogger(name), {})
