"""RQ in the peers benchmark: one queue, results kept in Redis (RQ's default, 500 s).

- defaults: ``rq worker``, whose ``Worker`` forks a work horse for every job;
- tuned: ``rq worker -w rq.worker.SimpleWorker``, the documented worker
  class that runs jobs in its own process, without a fork per job.

Both log at WARNING (``--logging_level WARNING``), as every worker here, so
no line is written per job. Bulk enqueue is ``Queue.enqueue_many()`` of
``Queue.prepare_data()`` items, 1,000 jobs a pipelined call.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job

from benchmarks.peers.versions import installed

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:1/0")


def add(x: int, y: int) -> int:
    """Return ``x + y``."""
    return x + y


class RqDriver:
    """Enqueue with ``Queue.enqueue()``; read results with ``Job.latest_result()``."""

    bulk_api = "Queue.enqueue_many()"

    def __init__(self, variant: str, redis_url: str, env: dict[str, str]) -> None:
        self.variant = variant
        self.redis_url = redis_url
        self.env = env
        self.connection = Redis.from_url(redis_url)
        self.queue = Queue("default", connection=self.connection)
        if variant == "tuned":
            self.setup = "-w rq.worker.SimpleWorker (no fork per job)"
        else:
            self.setup = "Worker (a forked work horse per job)"

    def versions(self) -> dict[str, str]:
        return installed("rq", "redis", "hiredis")

    def delay(self, i: int) -> Any:
        return self.queue.enqueue(add, i, i)

    def bulk(self, part: range) -> list[Any]:
        return self.queue.enqueue_many([Queue.prepare_data(add, (i, i)) for i in part])

    def done(self, handle: Job) -> bool:
        return handle.latest_result() is not None

    def value(self, handle: Job) -> Any:
        return handle.return_value(refresh=True)

    def get(self, handle: Job, timeout: float) -> Any:
        result = handle.latest_result(timeout=int(timeout))
        return None if result is None else result.return_value

    def worker_argv(self) -> list[str]:
        rq = str(Path(sys.executable).parent / "rq")
        tuned = ["-w", "rq.worker.SimpleWorker"] if self.variant == "tuned" else []
        return [rq, "worker", "-u", self.redis_url, "--logging_level", "WARNING", *tuned]

    def worker_env(self) -> dict[str, str]:
        return self.env

    def flush(self) -> None:
        self.connection.flushdb()


def make_driver(variant: str, redis_url: str, env: dict[str, str]) -> RqDriver:
    return RqDriver(variant, redis_url, env)
