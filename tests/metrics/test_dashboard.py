"""The Grafana dashboard shipped in docs/ queries only metrics the collector serves."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from prometheus_client.exposition import generate_latest

from django_taskq.broker import queues as registry
from django_taskq.broker.publish import run_pipeline
from django_taskq.metrics import counters
from django_taskq.metrics.prometheus import registry as metrics_registry
from django_taskq.worker.heartbeat import Heartbeat
from tests.metrics.scrape import names, parse
from tests.testapp.tasks import add

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "django_taskq.json"


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return found


def test_every_metric_the_dashboard_queries_is_served(broker: Any) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    batch = counters.Batch()
    batch.count("work", counters.SENT, "t", "")
    for ending in counters.ENDINGS:
        batch.task_ended("work", "t", "taskq@h", ending, runtime=0.1, wait=0.1)
    run_pipeline(broker, lambda pipe: batch.queue_writes(pipe, broker))
    registry.register(broker, ["work"])
    add.apply_async((1, 1), queue="work")
    info = {"hostname": "taskq@h", "queues": ["work"], "concurrency": 1}
    Heartbeat(threading.Event(), list, "taskq@h:1:aa", lambda: info).beat_now()
    served = names(parse(generate_latest(metrics_registry()).decode())[0])

    queried = {
        name for expr in _expressions(dashboard) for name in re.findall(r"\btaskq_[a-z_]+", expr)
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= served, sorted(queried - served)
