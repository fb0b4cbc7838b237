"""``manage.py taskq_worker``: run a worker."""

from __future__ import annotations

import argparse
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from django_taskq.management import numbers
from django_taskq.management.foreground import configure_worker_logging
from django_taskq.management.loglevel import add_loglevel_argument
from django_taskq.worker.main import POOLS, Worker


def _memory_kib(value: str) -> int:
    """``--max-memory-per-child`` in KiB (Celery's unit), or with a K/M/G suffix."""
    units = {"k": 1, "m": 1024, "g": 1024 * 1024}
    value = value.strip().lower().removesuffix("b")
    try:
        kib = int(float(value[:-1]) * units[value[-1]]) if value[-1:] in units else int(value)
    except (ValueError, OverflowError):
        kib = 0
    if kib < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a memory size: KiB, or a number with K, M or G (200M, 1G)"
        )
    return kib


class Command(BaseCommand):
    help = "Run a django_taskq worker: consume the queues and run their tasks."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-Q",
            "--queues",
            default=None,
            help="Comma-separated queues, in order of preference (default: TASKQ_DEFAULT_QUEUE).",
        )
        parser.add_argument(
            "-c",
            "--concurrency",
            type=numbers.positive,
            default=None,
            help="Number of child processes or threads (default: number of CPUs).",
        )
        parser.add_argument(
            "-P", "--pool", choices=POOLS, default=None, help="prefork (default), threads or solo."
        )
        add_loglevel_argument(parser, help="Level of the django_taskq logger.")
        parser.add_argument(
            "-n",
            "--hostname",
            default=None,
            help="Name of this worker (default taskq@<host name>).",
        )
        parser.add_argument(
            "--max-tasks-per-child",
            type=numbers.positive,
            default=None,
            help="Replace a child after it ran this many tasks.",
        )
        parser.add_argument(
            "--max-memory-per-child",
            type=_memory_kib,
            default=None,
            help="Replace a child whose memory exceeds this (KiB, or 200M / 1G).",
        )
        parser.add_argument(
            "--time-limit",
            type=numbers.some_seconds,
            default=None,
            help="Hard time limit in seconds for tasks that set none.",
        )
        parser.add_argument(
            "--soft-time-limit",
            type=numbers.some_seconds,
            default=None,
            help="Soft time limit in seconds for tasks that set none.",
        )
        parser.add_argument(
            "--prefetch",
            type=numbers.positive,
            default=None,
            help="Most messages one consumer holds unstarted (default TASKQ_WORKER_PREFETCH).",
        )
        parser.add_argument(
            "--async-concurrency",
            type=int,  # checked with the setting, naming both (conf.check_async_concurrency)
            default=None,
            metavar="N",
            help="async def tasks one consumer runs at once on its event loop "
            "(default TASKQ_WORKER_ASYNC_CONCURRENCY, 1: one at a time).",
        )
        parser.add_argument(
            "-B",
            "--beat",
            action="store_true",
            help="Also run the periodic task scheduler (beat) in this worker.",
        )
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Run what the queues hold, then stop (for cron and batch jobs); messages "
            "delayed to later are left for a later run.",
        )
        parser.add_argument(
            "--max-tasks",
            type=int,
            default=None,
            metavar="N",
            help="Stop the worker (warm, exit 0) after its consumers ended N tasks; with "
            "several consumers, tasks already running then end too.",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Turn a warm shutdown (SIGTERM, Ctrl-C) cold after this long: running tasks "
            "are interrupted and their messages handed back.",
        )
        parser.add_argument(
            "--no-graceful-shutdown",
            action="store_true",
            help="Shut down cold at the first SIGTERM or Ctrl-C: running tasks are "
            "interrupted and their messages handed back, to run again on another worker.",
        )
        parser.add_argument(
            "--failed-exit-code",
            type=int,
            default=None,
            metavar="N",
            help="With --burst: exit N if a task this worker ran failed or was dead-lettered.",
        )
        parser.add_argument(
            "--empty-exit-code",
            type=int,
            default=None,
            metavar="N",
            help="With --burst: exit N if the queues held nothing to run.",
        )
        parser.add_argument(
            "--summary",
            default=None,
            metavar="FILE",
            help="At exit, write what the worker ended to FILE as JSON: "
            '{"ended": N, "failed": N, "exit_code": N} (for scripts and the run/ endpoint).',
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            metavar="PORT",
            help="Serve Prometheus metrics on this port at /metrics (0: any free port; needs "
            "the [metrics] extra; TASKQ_METRICS_TOKEN protects it).",
        )
        parser.add_argument(
            "--metrics-addr",
            default="0.0.0.0",
            metavar="ADDR",
            help="Address --metrics-port listens on (default 0.0.0.0: every interface).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_worker_logging(options["loglevel"])
        queues = [q.strip() for q in (options["queues"] or "").split(",") if q.strip()] or None
        metrics = _metrics_server(options["metrics_port"], options["metrics_addr"])
        try:
            worker = Worker(
                queues=queues,
                concurrency=options["concurrency"],
                pool=options["pool"],
                hostname=options["hostname"],
                prefetch=options["prefetch"],
                max_tasks_per_child=options["max_tasks_per_child"],
                max_memory_per_child=options["max_memory_per_child"],
                time_limit=options["time_limit"],
                soft_time_limit=options["soft_time_limit"],
                beat=options["beat"],
                async_concurrency=options["async_concurrency"],
                burst=options["burst"],
                max_tasks=options["max_tasks"],
                shutdown_timeout=options["shutdown_timeout"],
                graceful=not options["no_graceful_shutdown"],
                failed_exit_code=options["failed_exit_code"],
                empty_exit_code=options["empty_exit_code"],
                summary=options["summary"],
                stdout=self.stdout,
                metrics=metrics,
            )
        except (ValueError, ImproperlyConfigured) as exc:
            if metrics is not None:
                metrics.stop()
            raise CommandError(str(exc)) from exc
        try:
            code = worker.run()
        finally:
            if metrics is not None:
                metrics.stop()
        sys.exit(code)


def _metrics_server(port: int | None, addr: str) -> Any:
    """The bound (not yet serving) --metrics-port server, or None; CommandError if it cannot be."""
    if port is None:
        return None
    from django_taskq.metrics.exposition import MetricsServer, MetricsUnavailable

    if not 0 <= port <= 65535:
        raise CommandError(f"--metrics-port {port} is not a TCP port (0-65535)")
    try:
        return MetricsServer(port, addr)
    except MetricsUnavailable as exc:
        raise CommandError(f"--metrics-port: {exc}") from exc
    except OSError as exc:
        raise CommandError(
            f"--metrics-port {port}: cannot listen on {addr}:{port} ({exc}); "
            "choose another port or --metrics-addr"
        ) from exc
