"""Celery in the peers benchmark: Redis as broker and result backend.

- defaults: ``celery worker -c 1``: the prefork pool with one child, the
  default prefetch multiplier (4), gossip, mingle and heartbeats on;
- tuned (Celery's "Optimizing" guide and worker options): ``-P solo``
  (the task runs in the worker process, no pool), ``--prefetch-multiplier
  64`` (many short tasks: a higher multiplier), ``--without-gossip
  --without-mingle --without-heartbeat`` (no broadcast traffic at start-up
  and while running).

Results are stored (``backend`` = the same Redis). Bulk enqueue is
``group(add.s(i, i) ...).apply_async()``, 1,000 signatures a group.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from celery import Celery, group
from celery.result import AsyncResult

from benchmarks.peers.versions import installed

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:1/0")

app = Celery("peer_celery", broker=URL, backend=URL)


@app.task
def add(x: int, y: int) -> int:
    """Return ``x + y``."""
    return x + y


TUNED = [
    "-P", "solo", "--prefetch-multiplier", "64",
    "--without-gossip", "--without-mingle", "--without-heartbeat",
]  # fmt: skip


class CeleryDriver:
    """Enqueue with ``delay()`` and read results with ``AsyncResult``."""

    bulk_api = "group(...).apply_async()"

    def __init__(self, variant: str, env: dict[str, str]) -> None:
        self.variant = variant
        self.env = env
        if variant == "tuned":
            self.setup = "-P solo --prefetch-multiplier 64, without gossip/mingle/heartbeat"
        else:
            self.setup = "-c 1 (prefork, 1 child), prefetch multiplier 4"

    def versions(self) -> dict[str, str]:
        return installed("celery", "kombu", "redis", "hiredis")

    def delay(self, i: int) -> Any:
        return add.delay(i, i)

    def bulk(self, part: range) -> list[Any]:
        return list(group(add.s(i, i) for i in part).apply_async().results)

    def done(self, handle: AsyncResult) -> bool:
        return bool(handle.ready())

    def value(self, handle: AsyncResult) -> Any:
        return handle.result

    def get(self, handle: AsyncResult, timeout: float) -> Any:
        return handle.get(timeout=timeout)

    def worker_argv(self) -> list[str]:
        pool = TUNED if self.variant == "tuned" else ["-c", "1"]
        celery = str(Path(sys.executable).parent / "celery")
        return [celery, "-A", __name__, "worker", "-l", "WARNING", *pool]

    def worker_env(self) -> dict[str, str]:
        return self.env

    def flush(self) -> None:
        with app.connection_for_write() as connection:
            connection.default_channel.client.flushdb()


def make_driver(variant: str, redis_url: str, env: dict[str, str]) -> CeleryDriver:
    return CeleryDriver(variant, env)
