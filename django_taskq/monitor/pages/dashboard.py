"""The dashboard: the last hour per minute, the slowest and the most-failing tasks.

Everything comes from the task counters in Redis (``metrics.counters``):
``throughput()`` for the endings per minute, ``read()`` for the totals
since the counters began, which is what "slowest" (mean runtime: the
runtime histogram's sum over its count) and "most failing" (failed and
dead-lettered counts) are ranked by. Above them, the numbers of the queues
and workers pages, each linking there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from django_taskq.metrics import counters
from django_taskq.monitor.pages import charts, display, sources
from django_taskq.monitor.pages.base import LiveAdmin

#: How many tasks each ranking lists.
TOP = 10
#: Endings counted as failures on the chart: failed, and dead-lettered.
FAILURES = (counters.FAILED, counters.REJECTED)


@dataclass(frozen=True)
class TaskRuntime:
    """A task's mean runtime over every run the counters saw."""

    task: str
    runs: int
    mean: float

    @property
    def mean_display(self) -> str:
        return display.duration(self.mean)


@dataclass(frozen=True)
class TaskFailures:
    """How often a task failed or was dead-lettered, beside how often it succeeded."""

    task: str
    failed: int
    rejected: int
    succeeded: int

    @property
    def rate(self) -> str:
        ended = self.failed + self.rejected + self.succeeded
        return f"{100 * (self.failed + self.rejected) / ended:.0f} %" if ended else ""


def slowest(snapshot: counters.Snapshot, top: int = TOP) -> list[TaskRuntime]:
    """The ``top`` tasks by mean runtime, summed over queues and workers."""
    sums: dict[str, list[float]] = {}
    for (metric, _queue, task, _worker), hist in snapshot.histograms.items():
        if metric == counters.RUNTIME:
            total = sums.setdefault(task, [0.0, 0.0])
            total[0] += hist.sum
            total[1] += hist.count
    ranked = [TaskRuntime(t, int(n), s / n) for t, (s, n) in sums.items() if n > 0]
    return sorted(ranked, key=lambda r: (-r.mean, r.task))[:top]


def most_failing(snapshot: counters.Snapshot, top: int = TOP) -> list[TaskFailures]:
    """The ``top`` tasks by failures (failed plus dead-lettered), most first."""
    wanted = (counters.FAILED, counters.REJECTED, counters.SUCCEEDED)
    counts: dict[str, dict[str, float]] = {}
    for (metric, _queue, task, _worker), n in snapshot.counters.items():
        if metric in wanted:
            per_task = counts.setdefault(task, {})
            per_task[metric] = per_task.get(metric, 0.0) + n
    ranked = [
        TaskFailures(
            task,
            int(c.get(counters.FAILED, 0)),
            int(c.get(counters.REJECTED, 0)),
            int(c.get(counters.SUCCEEDED, 0)),
        )
        for task, c in counts.items()
    ]
    failing = [r for r in ranked if r.failed + r.rejected]
    return sorted(failing, key=lambda r: (-(r.failed + r.rejected), r.task))[:top]


def per_minute(
    series: list[tuple[int, dict[str, int]]], names: tuple[str, ...]
) -> list[tuple[int, int]]:
    """(minute, sum of the ``names`` endings in it) for each minute of ``series``."""
    return [(minute, sum(ends.get(n, 0) for n in names)) for minute, ends in series]


class DashboardAdmin(LiveAdmin):
    """Dashboard: throughput and failures per minute, slowest and most-failing tasks."""

    fragment_template = "admin/django_taskq/dashboard/live.html"
    refresh_seconds = 5

    def read_live(self, request: HttpRequest) -> dict[str, Any]:
        queues = sources.known_queues()
        series = sources.throughput(queues, 60)
        snapshot = sources.metrics_snapshot(queues)
        stats = sources.queue_stats(queues)
        succeeded = per_minute(series, (counters.SUCCEEDED,))
        failures = per_minute(series, FAILURES)
        return {
            "succeeded_chart": charts.bar_chart(
                succeeded, _("Tasks succeeded per minute"), "taskq-chart-ok"
            ),
            "failures_chart": charts.bar_chart(
                failures, _("Tasks failed or dead-lettered per minute"), "taskq-chart-bad"
            ),
            "hour": {
                name: sum(ends.get(name, 0) for _, ends in series) for name in counters.ENDINGS
            },
            "slowest": slowest(snapshot),
            "failing": most_failing(snapshot),
            "totals": {
                name: sum(getattr(s, name) for s in stats)
                for name in ("ready", "in_flight", "delayed", "dead")
            },
            "queue_count": len(stats),
            "workers_online": sum(1 for w in sources.workers() if w.online),
            "series": series,
            "succeeded": succeeded,
            "failures": failures,
        }

    def json_data(self, live: dict[str, Any]) -> dict[str, Any]:
        return {
            "minutes": [minute for minute, _ in live["series"]],
            "succeeded": [n for _, n in live["succeeded"]],
            "failures": [n for _, n in live["failures"]],
            "hour": live["hour"],
            "slowest": [{"task": r.task, "runs": r.runs, "mean": r.mean} for r in live["slowest"]],
            "failing": [
                {
                    "task": r.task,
                    "failed": r.failed,
                    "rejected": r.rejected,
                    "succeeded": r.succeeded,
                }
                for r in live["failing"]
            ],
            "totals": live["totals"],
            "workers_online": live["workers_online"],
        }
