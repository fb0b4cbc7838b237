"""Django tasks framework functions (django.tasks or its backport), outside tasks.py on purpose.

No app config imports this module: a worker finds these tasks only by the
import path their messages carry (django_taskq/django_tasks.py, ``load``).
The signal receivers below note every ``task_started`` and
``task_finished`` in the worker into a Redis list the tests read.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from typing import Any

from django.dispatch import receiver

from django_taskq.broker.connection import get_broker
from django_taskq.tasks_framework import part

# django.tasks on Django 6.0+, the django-tasks backport on Django 5.2.
task = part("base").task
task_finished, task_started = part("signals").task_finished, part("signals").task_started

SIGNALS = "test:django-task-signals"
ATTEMPTS = "test:django-task-attempts"

#: Django 6.1's @task(**kwargs) passes options on to the backend's task class.
TAKES_OPTIONS = any(
    p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(task).parameters.values()
)


@receiver(task_started)
@receiver(task_finished)
def _note(sender: Any, task_result: Any, signal: Any, **kwargs: Any) -> None:
    name = "started" if signal is task_started else "finished"
    get_broker().rpush(
        SIGNALS, json.dumps([name, task_result.id, str(task_result.status), sender.__name__])
    )


@task
def multiply(x: int, y: int) -> int:
    return x * y


@task
def broken(message: str) -> None:
    raise ValueError(message)


@task(takes_context=True)
def who_am_i(context: Any, label: str) -> dict[str, Any]:
    return {"id": context.task_result.id, "attempt": context.attempt, "label": label}


@task
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@task(queue_name="emails", priority=100)
def send_mail(to: str) -> str:
    return f"sent to {to}"


@task
def stamp() -> float:
    return time.time()


@task
def crash_once(key: str) -> int:
    """Kill the process running it (SIGKILL) at the first attempt; return the attempt number."""
    attempt = int(get_broker().incr(f"{ATTEMPTS}:{key}"))
    if attempt == 1:
        os.kill(os.getpid(), 9)
    return attempt


if TAKES_OPTIONS:

    @task(time_limit=1)
    def too_slow() -> None:
        time.sleep(30)

    @task(autoretry_for=(RuntimeError,), max_retries=3, default_retry_delay=0)
    def flaky_twice(key: str) -> int:
        attempt = int(get_broker().incr(f"{ATTEMPTS}:{key}"))
        if attempt < 3:
            raise RuntimeError(f"attempt {attempt} failed")
        return attempt

    @task(autoretry_for=(RuntimeError,), max_retries=2, default_retry_delay=0)
    def always_fails(key: str) -> None:
        attempt = int(get_broker().incr(f"{ATTEMPTS}:{key}"))
        raise RuntimeError(f"attempt {attempt} failed")
