"""django_taskq in the peers benchmark: the benchmark app's ``add`` task, measured like the peers.

The task and settings are those of ``python -m benchmarks.bench``
(``benchmarks.bench_app``): SQLite in the run's directory (the workers'
history recorder writes to it), the broker on the harness's private Redis.

- defaults: ``taskq_worker -c 1`` (the prefork pool, one child), with task
  events, counters and the history recorder on, as a new project has them;
- tuned: ``taskq_worker -P solo`` with ``TASKQ_EVENTS``, ``TASKQ_METRICS``
  and ``TASKQ_HISTORY`` off (docs/settings.md; docs/benchmarks.md, "Task
  events and history on and off"): no monitoring stream, like Celery's
  default of no task events.

Bulk enqueue is ``add.delay_many()``, 1,000 calls a pipelined round trip.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from benchmarks.peers.versions import installed

SETTINGS_MODULE = "benchmarks.bench_app.settings"
OFF = {"TASKQ_EVENTS": "0", "TASKQ_METRICS": "0", "TASKQ_HISTORY": "0"}


class TaskqDriver:
    """Enqueue and read results through django_taskq's public API."""

    bulk_api = "add.delay_many()"

    def __init__(self, variant: str, redis_url: str, env: dict[str, str]) -> None:
        self.variant = variant
        self.settings_env = {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "TASKQ_BROKER_URL": redis_url,
            "TASKQ_BENCH_DIR": env["PEERS_WORKDIR"],
            **(OFF if variant == "tuned" else {}),
        }
        self.env = {**env, **self.settings_env}
        os.environ.update(self.settings_env)
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)  # the history recorder writes rows
        from benchmarks.bench_app.tasks import add
        from django_taskq.broker.connection import get_broker

        self.add = add
        self.client = get_broker()
        if variant == "tuned":
            self.setup = "-P solo; events, metrics, history off"
        else:
            self.setup = "-c 1 (prefork, 1 child); events, metrics, history on"

    def versions(self) -> dict[str, str]:
        return installed("django-taskq-streams", "Django", "redis", "hiredis")

    def delay(self, i: int) -> Any:
        return self.add.delay(i, i)

    def bulk(self, part: range) -> list[Any]:
        return self.add.delay_many((i, i) for i in part)

    def done(self, handle: Any) -> bool:
        return bool(handle.ready())

    def value(self, handle: Any) -> Any:
        return handle.result

    def get(self, handle: Any, timeout: float) -> Any:
        return handle.get(timeout=timeout)

    def worker_argv(self) -> list[str]:
        pool = ["-P", "solo"] if self.variant == "tuned" else ["-c", "1"]
        return [sys.executable, "-m", "django", "taskq_worker", "-l", "WARNING", *pool]

    def worker_env(self) -> dict[str, str]:
        return self.env

    def flush(self) -> None:
        self.client.flushdb()


def make_driver(variant: str, redis_url: str, env: dict[str, str]) -> TaskqDriver:
    return TaskqDriver(variant, redis_url, env)
