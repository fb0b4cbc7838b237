"""django_taskq: background and periodic tasks for Django on Redis Streams.

Public API (names a Celery user expects)::

    from django_taskq import shared_task, AsyncResult, states
    from django_taskq import signature, chain, group, chord, chunks, GroupResult

The distribution is ``django-taskq-streams`` (``pip install django-taskq-streams``);
the import name is ``django_taskq``.
"""

from django_taskq import states
from django_taskq.by_name import send_task
from django_taskq.canvas import (
    Signature,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    xmap,
    xstarmap,
)
from django_taskq.log import get_task_logger
from django_taskq.result import AsyncResult, EagerResult
from django_taskq.result_group import GroupResult
from django_taskq.task import Task, shared_task

# The one place the version is written (semantic versioning): pyproject.toml
# reads it (setuptools' dynamic version) and CHANGELOG.md's newest heading
# names it; tests/packaging checks that they and the installed metadata agree.
__version__ = "0.2.0"

__all__ = [
    "AsyncResult",
    "EagerResult",
    "GroupResult",
    "Signature",
    "Task",
    "chain",
    "chord",
    "chunks",
    "get_task_logger",
    "group",
    "maybe_signature",
    "send_task",
    "shared_task",
    "signature",
    "states",
    "xmap",
    "xstarmap",
]
