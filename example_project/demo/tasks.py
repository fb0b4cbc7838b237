"""Example tasks. django_taskq finds this module because ``demo`` is installed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from django_taskq import shared_task


@shared_task
def add(x: int, y: int) -> int:
    """The classic: add two numbers."""
    return x + y


@shared_task
def divide(a: float, b: float) -> float:
    """Fail with ZeroDivisionError when ``b`` is 0, to show a FAILURE result."""
    return a / b


@shared_task(bind=True, max_retries=3, default_retry_delay=0.5)
def flaky_fetch(self: Any, url: str, fail_times: int = 2) -> dict[str, Any]:
    """Fail the first ``fail_times`` attempts, as a flaky network call would, then succeed.

    ``self.retry()`` schedules the next attempt in Redis (the delayed set) and
    frees the worker; after ``max_retries`` attempts the exception is raised.
    """
    attempt = self.request.retries + 1
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError(f"{url} did not answer (attempt {attempt})"))
    return {"url": url, "attempts": attempt}


@shared_task(bind=True, track_started=True)
def slow_count(self: Any, steps: int = 5, pause: float = 0.3) -> int:
    """Count slowly, reporting progress with a custom PROGRESS state."""
    for done in range(1, steps + 1):
        time.sleep(pause)
        self.update_state(state="PROGRESS", meta={"done": done, "total": steps})
    return steps


@shared_task
def remind(message: str, sent_at: float) -> dict[str, Any]:
    """Return ``message`` and how long after ``sent_at`` it ran (send it with a countdown)."""
    return {"message": message, "ran_after": round(time.time() - sent_at, 2)}


@shared_task
def count_users() -> int:
    """Query the database from a worker (connections are handled per task)."""
    from django.contrib.auth import get_user_model

    return int(get_user_model().objects.count())


@shared_task(unique_for=30)
def refresh_report(name: str) -> str:
    """Unique by its arguments: while one refresh of ``name`` is queued or running,
    another ``delay(name)`` sends nothing and returns the first one's result."""
    time.sleep(0.2)
    return f"report {name} refreshed"


@shared_task
async def look_up(name: str, delay: float = 0.5) -> dict[str, Any]:
    """An I/O-bound ``async def`` task: it awaits (a stand-in for an HTTP call).

    With TASKQ_WORKER_ASYNC_CONCURRENCY above 1 (settings.py says 10), each
    worker process runs several at once on its event loop: ten of these take
    about ``delay`` seconds in all, not ten times it.
    """
    began = time.time()
    await asyncio.sleep(delay)
    return {"name": name, "began": began, "ended": time.time()}
