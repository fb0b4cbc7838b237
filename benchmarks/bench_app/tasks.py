"""The task the benchmark enqueues and drains."""

from __future__ import annotations

from django_taskq import shared_task


@shared_task
def add(x: int, y: int) -> int:
    """Return ``x + y``: as cheap as a task gets, so the figures measure the queue."""
    return x + y
