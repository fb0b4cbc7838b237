"""The tasks the benchmarks enqueue and drain."""

from __future__ import annotations

import os
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


@shared_task
def nap(x: int, y: int) -> int:
    """Sleep TASKQ_BENCH_NAP_MS milliseconds (default 10), then return ``x + y``.

    An I/O-bound task (an HTTP call, a slow query) stands in for by its wait:
    the concurrency benchmark drains it with the threads pool.
    """
    time.sleep(float(os.environ.get("TASKQ_BENCH_NAP_MS", "10")) / 1000)
    return x + y
