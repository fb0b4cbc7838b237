"""The Prometheus collector: task counters, histograms and live gauges, read from Redis per scrape.

Nothing is counted in the process that serves ``/metrics``: producers and
workers add their counts to Redis (``metrics/counters.py``), so any process
can serve the same numbers, every prefork child's work adds up, and a
restarted web server or worker loses nothing. On each scrape
``TaskqCollector`` reads them with ``counters.read()``, the queues with
``monitor.queues.queue_stats()`` and the workers index, all pipelined: a few
round trips, whatever the number of queues.

Names follow the Celery exporters' (danihodovic/celery-exporter, Flower)
so dashboards carry over with a rename: ``taskq_task_succeeded_total``
beside ``celery_task_succeeded_total``; docs/monitoring.md has the table.
Labels are ``name`` (the task), ``queue`` and ``worker`` (the worker's
hostname, ``taskq@host`` or ``-n``; empty for ``sent``, which producers
count).

This module needs ``prometheus_client`` (the ``[metrics]`` extra); import it
through ``metrics.exposition``, which says how to install it when missing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.metrics import counters
from django_taskq.monitor.queues import QueueStats, queue_stats
from django_taskq.safe_text import encodable_json

logger = logging.getLogger("django_taskq.metrics")

PREFIX = "taskq_"
TASK_LABELS = ("name", "queue", "worker")

#: What each counter counts (``taskq_task_<name>_total``).
COUNTER_HELP = {
    counters.SENT: "Tasks sent to a queue (by delay(), apply_async(), beat, retries, workflows).",
    counters.RECEIVED: "Tasks a worker fetched and settled, whether it ran them or not.",
    counters.STARTED: "Tasks a worker started to run.",
    counters.SUCCEEDED: "Tasks that ran and returned.",
    counters.FAILED: "Tasks that ended in FAILURE (their retries used up, or none asked).",
    counters.RETRIED: "Runs that ended in a retry being scheduled.",
    counters.REVOKED: "Tasks skipped or ended because they were revoked or had expired.",
    counters.REJECTED: "Tasks moved to the dead letters instead of running.",
}

#: counters.py histogram name -> (Prometheus name, help).
HISTOGRAMS = {
    counters.RUNTIME: ("task_runtime_seconds", "Seconds a task ran."),
    counters.WAIT: (
        "task_queue_wait_seconds",
        "Seconds a task waited in its queue, from when it was due to when a worker started it.",
    ),
}

#: QueueStats attribute -> (gauge name, help); one series per queue.
QUEUE_GAUGES = {
    "ready": ("queue_length", "Messages ready in the queue, not yet fetched by a worker."),
    "in_flight": ("queue_in_flight", "Messages fetched by a worker and not yet acked."),
    "delayed": ("queue_delayed", "Messages waiting for their ETA, countdown or retry delay."),
    "dead": ("queue_dead_letters", "Dead letters kept for the queue."),
}


@dataclass(frozen=True)
class WorkerSeen:
    """What the gauges need of one worker."""

    hostname: str
    online: bool
    queues: tuple[str, ...]
    concurrency: int
    #: Tasks running now; None when the source does not tell.
    running: int | None = None


def seen_workers(client: Any) -> list[WorkerSeen]:
    """Every worker in the workers index, online when it beat within the heartbeat timeout.

    Reads the index and the workers' descriptions directly (one ZRANGE, one
    MGET); a description's ``running`` list, when a worker writes one, gives
    the tasks it runs now. ``django_taskq.monitor.workers.workers()`` tells
    the same, and can replace this function.
    """
    entries = client.zrange(keys.workers(), 0, -1, withscores=True)
    if not entries:
        return []
    names = [_text(name) for name, _ in entries]
    infos = client.mget([keys.worker_info(name) for name in names])
    timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
    now = time.time()
    out = []
    for name, (_, score), raw in zip(names, entries, infos, strict=True):
        try:
            # encodable_json: a lone surrogate in a label made the scrape fail to encode.
            info = encodable_json(json.loads(raw)) if raw else {}
        except (ValueError, RecursionError):
            info = {}
        info = info if isinstance(info, dict) else {}
        queues = info.get("queues")
        concurrency = info.get("concurrency")
        running = info.get("running")
        out.append(
            WorkerSeen(
                hostname=str(info.get("hostname") or name.rsplit(":", 2)[0]),
                online=now - float(score) / 1000 <= timeout,
                queues=tuple(str(q) for q in queues) if isinstance(queues, list) else (),
                concurrency=concurrency if isinstance(concurrency, int) else 0,
                running=len(running) if isinstance(running, list) else None,
            )
        )
    return out


class TaskqCollector(Collector):
    """Reads django_taskq's metrics from Redis on every scrape.

    When Redis cannot be read, the scrape still answers, with
    ``taskq_broker_up 0`` and nothing else of django_taskq's, so an alert
    can tell "Redis is away" from "the exporter is away".
    """

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily(
            PREFIX + "broker_up", "1 if this scrape could read django_taskq's Redis, else 0."
        )
        try:
            client = get_broker()
            stats = queue_stats()
            snapshot = counters.read(client, [s.name for s in stats])
            workers = seen_workers(client)
            backlog = history_backlog(client, [s.name for s in stats])
        except (BrokerUnavailable, redis.RedisError) as exc:
            logger.warning("metrics: cannot read Redis: %s", exc)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            yield from task_counters(snapshot)
            yield from task_histograms(snapshot)
            yield from queue_gauges(stats, workers)
            yield from worker_gauges(workers)
            yield from history_gauges(backlog)
        duration = GaugeMetricFamily(
            PREFIX + "scrape_duration_seconds", "Seconds this scrape took to read Redis."
        )
        duration.add_metric([], time.perf_counter() - started)
        yield duration


@dataclass(frozen=True)
class Backlog:
    """The history recorder's position in one queue's events stream (XINFO GROUPS)."""

    queue: str
    lag: int | None  # events not read yet (None: Redis cannot tell, after trimming)
    pending: int  # read, not yet written to the database


def history_backlog(client: Any, queues: list[str]) -> list[Backlog]:
    """Where the recorder stands in each queue's events stream: one pipelined round trip.

    Queues whose stream has no recorder group yet (history off, or nothing
    recorded so far) are left out.
    """
    from django_taskq.history.reader import GROUP

    if not queues:
        return []
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.xinfo_groups(keys.events(queue))
    out = []
    for queue, reply in zip(queues, pipe.execute(raise_on_error=False), strict=True):
        if not isinstance(reply, list):
            continue  # no events stream yet
        for group in reply:
            name = group.get("name")
            if (name.decode(errors="replace") if isinstance(name, bytes) else name) != GROUP:
                continue
            lag = group.get("lag")
            out.append(
                Backlog(
                    queue,
                    int(lag) if isinstance(lag, int) else None,
                    int(group.get("pending") or 0),
                )
            )
    return out


def history_gauges(backlog: list[Backlog]) -> Iterator[Metric]:
    """``taskq_history_lag`` and ``taskq_history_pending`` per queue: is the recorder keeping up?"""
    lag = GaugeMetricFamily(
        PREFIX + "history_lag",
        "Task events in the queue's events stream the history recorder has not read yet.",
        labels=["queue"],
    )
    pending = GaugeMetricFamily(
        PREFIX + "history_pending",
        "Task events the history recorder has read but not yet written to the database.",
        labels=["queue"],
    )
    for found in backlog:
        if found.lag is not None:
            lag.add_metric([found.queue], found.lag)
        pending.add_metric([found.queue], found.pending)
    yield lag
    yield pending


def task_counters(snapshot: counters.Snapshot) -> Iterator[Metric]:
    """``taskq_task_<event>_total{name,queue,worker}``, one family per event.

    A (task, queue, worker) that has any worker count gets every worker
    counter, zeros included (as celery-exporter does), so ``rate()`` of
    failures works before the first failure.
    """
    seen = {(q, t, w) for (_, q, t, w) in snapshot.counters if w}
    for metric in counters.COUNTERS:
        family = CounterMetricFamily(
            f"{PREFIX}task_{metric}", COUNTER_HELP[metric], labels=TASK_LABELS
        )
        series = {(q, t, w): n for (m, q, t, w), n in snapshot.counters.items() if m == metric}
        if metric != counters.SENT:
            for key in seen:
                series.setdefault(key, 0.0)
        for (queue, task, worker), value in sorted(series.items()):
            family.add_metric([task, queue, worker], value)
        yield family


def task_histograms(snapshot: counters.Snapshot) -> Iterator[Metric]:
    """``taskq_task_runtime_seconds`` and ``taskq_task_queue_wait_seconds``, per series."""
    for metric, (name, help_text) in HISTOGRAMS.items():
        family = HistogramMetricFamily(PREFIX + name, help_text, labels=TASK_LABELS)
        for (m, queue, task, worker), hist in sorted(snapshot.histograms.items()):
            if m == metric:
                family.add_metric([task, queue, worker], hist.cumulative(), hist.sum)
        yield family


def queue_gauges(stats: list[QueueStats], workers: list[WorkerSeen]) -> Iterator[Metric]:
    """Per queue: lengths, the oldest ready message's age, the workers consuming it."""
    for attribute, (name, help_text) in QUEUE_GAUGES.items():
        family = GaugeMetricFamily(PREFIX + name, help_text, labels=["queue"])
        for queue in stats:
            family.add_metric([queue.name], float(getattr(queue, attribute)))
        yield family
    age = GaugeMetricFamily(
        PREFIX + "queue_oldest_age_seconds",
        "Seconds the oldest ready message of the queue has waited; 0 when none is ready.",
        labels=["queue"],
    )
    online = [w for w in workers if w.online]
    consuming = GaugeMetricFamily(
        PREFIX + "active_worker_count",
        "Online workers that consume the queue.",
        labels=["queue"],
    )
    processes = GaugeMetricFamily(
        PREFIX + "active_process_count",
        "Processes or threads of the online workers that consume the queue.",
        labels=["queue"],
    )
    for queue in stats:
        age.add_metric([queue.name], queue.oldest_age or 0.0)
        mine = [w for w in online if queue.name in w.queues]
        consuming.add_metric([queue.name], float(len(mine)))
        processes.add_metric([queue.name], float(sum(w.concurrency for w in mine)))
    yield age
    yield consuming
    yield processes


def worker_gauges(workers: list[WorkerSeen]) -> Iterator[Metric]:
    """``taskq_worker_up{worker}`` (and tasks running, when known), by hostname.

    Two worker processes with one hostname are one series: up if either is.
    """
    up: dict[str, bool] = {}
    running: dict[str, int] = {}
    for worker in workers:
        up[worker.hostname] = up.get(worker.hostname, False) or worker.online
        if worker.online and worker.running is not None:
            running[worker.hostname] = running.get(worker.hostname, 0) + worker.running
    family = GaugeMetricFamily(
        PREFIX + "worker_up",
        "1 if the worker beat within TASKQ_WORKER_HEARTBEAT_TIMEOUT, 0 if it is remembered "
        "but silent (forgotten after TASKQ_WORKER_FORGET_AFTER).",
        labels=["worker"],
    )
    for hostname in sorted(up):
        family.add_metric([hostname], 1.0 if up[hostname] else 0.0)
    yield family
    if running:
        active = GaugeMetricFamily(
            PREFIX + "worker_tasks_active", "Tasks the worker runs now.", labels=["worker"]
        )
        for hostname in sorted(running):
            active.add_metric([hostname], float(running[hostname]))
        yield active


@cache
def registry() -> CollectorRegistry:
    """The registry the view and ``taskq_worker --metrics-port`` serve: django_taskq's only.

    To serve django_taskq's metrics from a registry of your own (beside
    your app's), ``your_registry.register(TaskqCollector())``.
    """
    own = CollectorRegistry(auto_describe=False)
    own.register(TaskqCollector())
    return own


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
