"""Dramatiq in the peers benchmark: its Redis broker with the Results middleware.

- defaults: ``RedisBroker`` + ``Results(backend=RedisBackend())``, the
  default middleware, and ``dramatiq --processes 1 --threads 1`` (one
  execution slot; the queue prefetch is then its default, 2 x threads);
- tuned: the same with ``dramatiq_queue_prefetch=64`` in the worker's
  environment (the variable of Dramatiq's reference that sets how many
  messages a consumer holds unacknowledged: with the default, 2, its Redis
  consumer sleeps a back-off whenever both are still being worked on).

Bulk enqueue is ``group(add.message(i, i) ...).run()``: Dramatiq has no
pipelined enqueue, so this is a loop of ``broker.enqueue()`` (one round
trip each), measured as what the bulk API costs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from dramatiq.results import ResultMissing, Results
from dramatiq.results.backends import RedisBackend

from benchmarks.peers.versions import installed

URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:1/0")

broker = RedisBroker(url=URL)
backend = RedisBackend(url=URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def add(x: int, y: int) -> int:
    """Return ``x + y``."""
    return x + y


class DramatiqDriver:
    """Enqueue with ``send()``; read results with ``Message.get_result()``."""

    bulk_api = "group(...).run()"

    def __init__(self, variant: str, env: dict[str, str]) -> None:
        self.variant = variant
        self.env = {**env, "dramatiq_queue_prefetch": "64"} if variant == "tuned" else env
        if variant == "tuned":
            self.setup = "--processes 1 --threads 1, dramatiq_queue_prefetch=64"
        else:
            self.setup = "--processes 1 --threads 1"

    def versions(self) -> dict[str, str]:
        return installed("dramatiq", "redis", "hiredis")

    def delay(self, i: int) -> Any:
        return add.send(i, i)

    def bulk(self, part: range) -> list[Any]:
        messages = [add.message(i, i) for i in part]
        dramatiq.group(messages).run()
        return messages

    def done(self, handle: Message[Any]) -> bool:
        try:
            handle.get_result(backend=backend)
        except ResultMissing:
            return False
        return True

    def value(self, handle: Message[Any]) -> Any:
        return handle.get_result(backend=backend)

    def get(self, handle: Message[Any], timeout: float) -> Any:
        return handle.get_result(backend=backend, block=True, timeout=int(timeout * 1000))

    def worker_argv(self) -> list[str]:
        cli = str(Path(sys.executable).parent / "dramatiq")
        return [cli, __name__, "--processes", "1", "--threads", "1"]

    def worker_env(self) -> dict[str, str]:
        return self.env

    def flush(self) -> None:
        broker.client.flushdb()


def make_driver(variant: str, redis_url: str, env: dict[str, str]) -> DramatiqDriver:
    return DramatiqDriver(variant, env)
