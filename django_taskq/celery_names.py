"""Celery's names (settings, task options, call options), and what replaces each here.

A project moving from Celery often keeps its ``CELERY_*`` settings for a
while; django_taskq never reads them, so a setting left behind silently
does nothing. ``manage.py check`` names each one with its ``TASKQ_*``
replacement (``taskq.W005``). The table is the code form of the settings
table in docs/migrating-from-celery.md; a test keeps the two the same.

The option tables serve the "unknown option" errors of ``@shared_task``
and ``apply_async()``: a Celery option named there gets what to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Celery setting -> the TASKQ_* setting that replaces it (None: none does).
SETTINGS: dict[str, str | None] = {
    "CELERY_BROKER_URL": "TASKQ_BROKER_URL",
    "CELERY_RESULT_BACKEND": "TASKQ_RESULT_BACKEND",
    "CELERY_RESULT_EXPIRES": "TASKQ_RESULT_EXPIRES",
    "CELERY_TASK_ALWAYS_EAGER": "TASKQ_TASK_ALWAYS_EAGER",
    "CELERY_TASK_EAGER_PROPAGATES": "TASKQ_TASK_EAGER_PROPAGATES",
    "CELERY_TASK_ROUTES": "TASKQ_ROUTES",
    "CELERY_TASK_DEFAULT_QUEUE": "TASKQ_DEFAULT_QUEUE",
    "CELERY_TASK_DEFAULT_PRIORITY": "TASKQ_DEFAULT_PRIORITY",
    "CELERY_TASK_ACKS_LATE": "TASKQ_TASK_ACKS_LATE",
    "CELERY_TASK_TRACK_STARTED": "TASKQ_TASK_TRACK_STARTED",
    "CELERY_TASK_IGNORE_RESULT": "TASKQ_TASK_IGNORE_RESULT",
    "CELERY_TASK_TIME_LIMIT": "TASKQ_TASK_TIME_LIMIT",
    "CELERY_TASK_SOFT_TIME_LIMIT": "TASKQ_TASK_SOFT_TIME_LIMIT",
    "CELERY_TASK_DEFAULT_RETRY_DELAY": "TASKQ_TASK_DEFAULT_RETRY_DELAY",
    "CELERY_TASK_PUBLISH_RETRY_POLICY": "TASKQ_PUBLISH_RETRY",
    "CELERY_ACCEPT_CONTENT": "TASKQ_ACCEPT_CONTENT",
    "CELERY_TASK_SERIALIZER": "TASKQ_TASK_SERIALIZER",
    "CELERY_TASK_COMPRESSION": "TASKQ_COMPRESSION",
    "CELERY_RESULT_COMPRESSION": "TASKQ_RESULT_COMPRESSION",
    "CELERY_RESULT_SERIALIZER": None,
    "CELERY_RESULT_ACCEPT_CONTENT": None,
    "CELERY_WORKER_CONCURRENCY": "TASKQ_WORKER_CONCURRENCY",
    "CELERY_WORKER_POOL": "TASKQ_WORKER_POOL",
    "CELERY_WORKER_PREFETCH_MULTIPLIER": "TASKQ_WORKER_PREFETCH",
    "CELERY_WORKER_MAX_TASKS_PER_CHILD": "TASKQ_WORKER_MAX_TASKS_PER_CHILD",
    "CELERY_WORKER_MAX_MEMORY_PER_CHILD": "TASKQ_WORKER_MAX_MEMORY_PER_CHILD",
    "CELERY_BROKER_TRANSPORT_OPTIONS": None,
    "CELERY_BEAT_SCHEDULE": "TASKQ_BEAT_SCHEDULE",
    "CELERY_TIMEZONE": "TASKQ_TIMEZONE",
}

#: Why a setting in SETTINGS has no replacement.
NO_REPLACEMENT = {
    "CELERY_RESULT_SERIALIZER": "result records are JSON (with tagged types); "
    "TASKQ_RESULT_COMPRESSION compresses them (docs/serialization.md)",
    "CELERY_RESULT_ACCEPT_CONTENT": "result records are JSON, read by any process "
    "(docs/serialization.md)",
    "CELERY_BROKER_TRANSPORT_OPTIONS": (
        "there is no visibility timeout: a lost worker's tasks come back after "
        "TASKQ_WORKER_HEARTBEAT_TIMEOUT (docs/delivery.md)"
    ),
}


def is_celery_setting(name: str) -> bool:
    """A name Celery reads from Django settings (its CELERY_ namespace, or the old CELERYBEAT_)."""
    return name.startswith(("CELERY_", "CELERYBEAT_"))


def hint(name: str) -> str:
    """What to do about the Celery setting ``name``."""
    if name in SETTINGS:
        replacement = SETTINGS[name]
        if replacement is None:
            return f"Remove it: {NO_REPLACEMENT[name]}."
        return f"Use {replacement} (docs/migrating-from-celery.md), then remove {name}."
    return (
        "django_taskq reads TASKQ_* settings only: docs/migrating-from-celery.md says what "
        f"replaces {name}, if anything; then remove it."
    )


_WORKER_LOST = (
    "a message whose worker died is redelivered after TASKQ_WORKER_HEARTBEAT_TIMEOUT and "
    "dead-lettered after TASKQ_MAX_DELIVERIES"
)
_PYDANTIC = (
    "arguments travel as JSON (with tagged types): call model_dump() before sending and "
    "model_validate() in the task"
)
_CONNECTIONS = "connections come from TASKQ_BROKER_URL"
_PUBLISH_RETRY = "publishing is always retried, for at most TASKQ_PUBLISH_TIMEOUT seconds"
_SHADOW = "a task's name in logs and results is its registered name"

#: Celery task options (``@app.task(...)``) not taken here -> why, and what to do
#: instead. docs/migrating-from-celery.md ("Every Celery name") shows the same
#: words; tests/core/test_celery_reference.py keeps the two equal.
CELERY_TASK_OPTIONS = {
    "abstract": "a base class is never registered: subclass django_taskq.Task and pass it as base=",
    "acks_on_failure": "a failed task is always acked, its failure stored",
    "acks_on_timeout": "a task killed at its hard time limit is always acked, its failure stored",
    "acks_on_failure_or_timeout": "a failed task is always acked, its failure stored",
    "reject_on_worker_lost": _WORKER_LOST,
    "retry_on_worker_lost": _WORKER_LOST,
    "resultrepr_maxsize": "TASKQ_HISTORY_REPR_LIMIT bounds the result shown in the task history",
    "send_events": "task events are written for every task (TASKQ_EVENTS)",
    "store_errors_even_if_ignored": "ignore_result=True stores nothing; the task history "
    "keeps failures",
    "trail": "the tasks a task sends are always its children",
    "shadow_name": _SHADOW,
    "backend": "results go to TASKQ_RESULT_BACKEND",
    "shared": "there is no app: every @shared_task is shared",
    "lazy": "a task is registered when its module is imported",
    "pydantic": _PYDANTIC,
    "pydantic_strict": _PYDANTIC,
    "pydantic_context": _PYDANTIC,
    "pydantic_dump_kwargs": _PYDANTIC,
}

#: Celery ``apply_async()`` options not taken here -> why, and what to do instead.
CELERY_CALL_OPTIONS = {
    "retry": _PUBLISH_RETRY,
    "retry_policy": _PUBLISH_RETRY,
    "shadow": _SHADOW,
    "add_to_parent": "a task sent from a running task is always its child (AsyncResult.children)",
    "connection": _CONNECTIONS,
    "producer": _CONNECTIONS,
    "publisher": _CONNECTIONS,
    "reply_to": "results go to TASKQ_RESULT_BACKEND",
    "mandatory": "not an option on Redis",
    "immediate": "not an option on Redis",
}


def option_hints(names: Iterable[str], kind: str) -> str:
    """`` (Celery's X: ...)`` for each Celery option among ``names`` (``kind``: task or call)."""
    table = CELERY_TASK_OPTIONS if kind == "task" else CELERY_CALL_OPTIONS
    hints = [f"{name}: {table[name]}" for name in sorted(names) if name in table]
    return f" (Celery's {'; '.join(hints)})" if hints else ""
