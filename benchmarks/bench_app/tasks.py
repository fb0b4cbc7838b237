"""The tasks the benchmarks enqueue and drain."""

from __future__ import annotations

import time

from django_taskq import shared_task


@shared_task
def add(x: int, y: int) -> int:
    """Return ``x + y``: as cheap as a task gets, so the figures measure the queue."""
    return x + y


@shared_task
def stamp() -> float:
    """Return when it ran (``time.time()``): the ETA benchmark compares that with the ETA."""
    return time.time()
