"""The workers page: every worker still remembered, what it runs now, and how it has done.

Reads ``workers()`` (``monitor.workers``): online ones first, offline ones
(no beat within the heartbeat timeout, kept until TASKQ_WORKER_FORGET_AFTER)
faded below them. The runtime of a running task is measured from its start
to the moment the page was read.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from django.http import HttpRequest

from django_taskq.monitor.pages import display, sources
from django_taskq.monitor.pages.base import LiveAdmin


def worker_row(worker: sources.WorkerState, now: float) -> dict[str, Any]:
    """A worker as the page shows it."""
    return {
        "worker": worker,
        "anchor": display.anchor(worker.name),
        "started": display.moment(worker.started),
        "last_beat": display.moment(worker.last_beat),
        "beat_age": display.duration(now - worker.last_beat) if worker.last_beat else "",
        "load": " ".join(f"{x:.2f}" for x in worker.load) if worker.load else "",
        "running": [
            {"task": task, "runtime": display.duration(now - task.started)}
            for task in sorted(worker.running, key=lambda t: t.started)
        ],
    }


class WorkerAdmin(LiveAdmin):
    """Workers: host, pool, queues, heartbeats, counts and the tasks running now."""

    fragment_template = "admin/django_taskq/worker/live.html"
    refresh_seconds = 5

    def read_live(self, request: HttpRequest) -> dict[str, Any]:
        now = time.time()
        found = sorted(sources.workers(), key=lambda w: (not w.online, w.name))
        return {
            "workers": [worker_row(w, now) for w in found],
            "online": sum(1 for w in found if w.online),
        }

    def json_data(self, live: dict[str, Any]) -> dict[str, Any]:
        return {"workers": [dataclasses.asdict(row["worker"]) for row in live["workers"]]}
