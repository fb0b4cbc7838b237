"""Huey in the peers benchmark: ``RedisHuey``, results stored in Redis (its default).

- defaults: ``RedisHuey()`` (blocking dequeue with BRPOP, its default) and
  ``huey_consumer -w 1 -k thread`` (one worker thread, the default);
  ``Result.get(blocking=True)`` polls for the result with a back-off from
  0.1 s, as Huey does by default;
- tuned: ``RedisHuey(notify_result=True)``: the option of Huey's Redis
  storage (see its ``RedisStorage`` docstring) that makes a blocking
  ``get()`` wait with BLPOP on a notification key instead of polling;
  ``-n`` (no periodic task enqueueing).

Huey has no bulk enqueue: the drain's tasks are enqueued one by one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from huey import RedisHuey
from huey.api import Result

from benchmarks.peers.versions import installed

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:1/0")
TUNED = os.environ.get("PEERS_VARIANT") == "tuned"

huey = RedisHuey("peers", url=URL, notify_result=TUNED)


@huey.task()
def add(x: int, y: int) -> int:
    """Return ``x + y``."""
    return x + y


class HueyDriver:
    """Call the task to enqueue it; read results with ``Result.get(preserve=True)``."""

    bulk_api = ""

    def __init__(self, variant: str, env: dict[str, str]) -> None:
        self.variant = variant
        self.env = env
        if variant == "tuned":
            self.setup = "RedisHuey(notify_result=True), -w 1 -k thread -n"
        else:
            self.setup = "RedisHuey(), -w 1 -k thread"

    def versions(self) -> dict[str, str]:
        return installed("huey", "redis", "hiredis")

    def delay(self, i: int) -> Any:
        return add(i, i)

    def bulk(self, part: range) -> list[Any]:
        raise NotImplementedError("Huey has no bulk enqueue")

    def done(self, handle: Result) -> bool:
        return handle.get(preserve=True) is not None

    def value(self, handle: Result) -> Any:
        return handle.get(preserve=True)

    def get(self, handle: Result, timeout: float) -> Any:
        return handle.get(blocking=True, timeout=timeout)

    def worker_argv(self) -> list[str]:
        consumer = str(Path(sys.executable).parent / "huey_consumer")
        extra = ["-n"] if self.variant == "tuned" else []
        return [consumer, f"{__name__}.huey", "-w", "1", "-k", "thread", "-q", *extra]

    def worker_env(self) -> dict[str, str]:
        return self.env

    def flush(self) -> None:
        huey.storage.conn.flushdb()


def make_driver(variant: str, redis_url: str, env: dict[str, str]) -> HueyDriver:
    return HueyDriver(variant, env)
