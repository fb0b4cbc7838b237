"""django_taskq: background and periodic tasks for Django on Redis Streams.

Public API (names a Celery user expects)::

    from django_taskq import shared_task, AsyncResult, states
"""

from django_taskq import states
from django_taskq.result import AsyncResult, EagerResult
from django_taskq.task import Task, shared_task

__all__ = ["AsyncResult", "EagerResult", "Task", "shared_task", "states"]

__version__ = "0.1.0"
