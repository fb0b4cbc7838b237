"""The Prometheus collector against a real Redis, read back with prometheus_client's parser."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from django.test import override_settings
from prometheus_client.exposition import generate_latest

from django_taskq.broker import keys
from django_taskq.broker import queues as registry
from django_taskq.broker.publish import run_pipeline
from django_taskq.metrics import counters
from django_taskq.metrics.prometheus import registry as metrics_registry
from django_taskq.worker import streams as ops
from django_taskq.worker.heartbeat import Heartbeat
from tests.metrics.scrape import Samples, names, parse, value
from tests.testapp.tasks import add


def scrape() -> tuple[Samples, dict[str, str]]:
    return parse(generate_latest(metrics_registry()).decode())


def _write(broker: Any, batch: counters.Batch) -> None:
    run_pipeline(broker, lambda pipe: batch.queue_writes(pipe, broker))


def test_counters_written_by_batches_are_scraped_per_task_queue_and_worker(broker: Any) -> None:
    batch = counters.Batch()
    batch.count("work", counters.SENT, "tasks.a", "", 5)
    batch.task_ended("work", "tasks.a", "taskq@h1", counters.SUCCEEDED, runtime=0.02, wait=0.3)
    batch.task_ended("work", "tasks.a", "taskq@h1", counters.SUCCEEDED, runtime=2.0, wait=0.001)
    batch.task_ended("work", "tasks.b", "taskq@h2", counters.FAILED, runtime=0.5, wait=0.0)
    batch.task_ended("work", "tasks.b", "taskq@h2", counters.REJECTED, runtime=None, wait=None)
    _write(broker, batch)
    again = counters.Batch()  # a second flush adds up
    again.task_ended("work", "tasks.a", "taskq@h1", counters.RETRIED, runtime=0.1, wait=0.1)
    _write(broker, again)
    registry.register(broker, ["work"])

    samples, types = scrape()
    a = {"name": "tasks.a", "queue": "work", "worker": "taskq@h1"}
    b = {"name": "tasks.b", "queue": "work", "worker": "taskq@h2"}
    assert types["taskq_task_succeeded"] == "counter"
    assert value(samples, "taskq_task_sent_total", name="tasks.a", queue="work", worker="") == 5
    assert value(samples, "taskq_task_received_total", **a) == 3
    assert value(samples, "taskq_task_started_total", **a) == 3
    assert value(samples, "taskq_task_succeeded_total", **a) == 2
    assert value(samples, "taskq_task_retried_total", **a) == 1
    assert value(samples, "taskq_task_failed_total", **a) == 0  # zeros, so rate() works
    assert value(samples, "taskq_task_revoked_total", **a) == 0
    assert value(samples, "taskq_task_received_total", **b) == 2
    assert value(samples, "taskq_task_started_total", **b) == 1
    assert value(samples, "taskq_task_failed_total", **b) == 1
    assert value(samples, "taskq_task_rejected_total", **b) == 1
    assert value(samples, "taskq_task_sent_total", **b) is None  # sent has no worker

    assert types["taskq_task_runtime_seconds"] == "histogram"
    runtime = "taskq_task_runtime_seconds"
    assert value(samples, f"{runtime}_bucket", **a, le="0.005") == 0
    assert value(samples, f"{runtime}_bucket", **a, le="0.025") == 1
    assert value(samples, f"{runtime}_bucket", **a, le="0.1") == 2
    assert value(samples, f"{runtime}_bucket", **a, le="2.5") == 3
    assert value(samples, f"{runtime}_bucket", **a, le="+Inf") == 3
    assert value(samples, f"{runtime}_count", **a) == 3
    assert value(samples, f"{runtime}_sum", **a) == pytest.approx(2.12)
    wait = "taskq_task_queue_wait_seconds"
    assert types[wait] == "histogram"
    assert value(samples, f"{wait}_bucket", **a, le="0.005") == 1
    assert value(samples, f"{wait}_bucket", **a, le="0.1") == 2
    assert value(samples, f"{wait}_bucket", **a, le="0.5") == 3
    assert value(samples, f"{wait}_count", **b) == 1


def test_counters_of_unregistered_queues_are_not_read(broker: Any) -> None:
    """Queues come from the registry (no KEYS/SCAN)."""
    batch = counters.Batch()
    batch.task_ended("ghost", "tasks.a", "taskq@h1", counters.SUCCEEDED, runtime=0.1, wait=0.1)
    _write(broker, batch)
    samples, _ = scrape()
    assert "taskq_task_succeeded_total" not in names(samples)
    registry.register(broker, ["ghost"])
    samples, _ = scrape()
    assert "taskq_task_succeeded_total" in names(samples)


def _beat(worker: str, hostname: str, queues: list[str], concurrency: int, **extra: Any) -> None:
    info = {"name": worker, "hostname": hostname, "queues": queues, "concurrency": concurrency}
    info.update(extra)
    Heartbeat(threading.Event(), list, worker, lambda: info).beat_now()


def test_queue_and_worker_gauges(broker: Any) -> None:
    for i in range(4):
        add.apply_async((i, i), queue="work")
    add.apply_async((9, 9), queue="work", countdown=600)
    add.apply_async((1, 1), queue="idle")
    ops.ensure_groups(broker, keys.queue_streams("work"))
    held = ops.fetch(broker, ["work"], "taskq@alive:1:aa:0", 2)
    run_pipeline(broker, lambda pipe: ops.queue_dead_letter(pipe, broker, held[1], "test"))
    _beat("taskq@alive:1:aa", "taskq@alive", ["work", "other"], 4)
    _beat("taskq@alive:2:bb", "taskq@alive", ["work"], 2, running=[{"task_id": "x"}])
    _beat("taskq@gone:3:cc", "taskq@gone", ["work"], 8)
    long_ago = (time.time() - 3600) * 1000
    broker.zadd(keys.workers(), {"taskq@gone:3:cc": long_ago})
    broker.zadd(keys.workers(), {"taskq@garbage:4:dd": time.time() * 1000})
    broker.set(keys.worker_info("taskq@garbage:4:dd"), "{not json")

    samples, types = scrape()
    assert value(samples, "taskq_broker_up") == 1
    assert types["taskq_queue_length"] == "gauge"
    assert value(samples, "taskq_queue_length", queue="work") == 2
    assert value(samples, "taskq_queue_in_flight", queue="work") == 1
    assert value(samples, "taskq_queue_delayed", queue="work") == 1
    assert value(samples, "taskq_queue_dead_letters", queue="work") == 1
    assert value(samples, "taskq_queue_length", queue="idle") == 1
    oldest = value(samples, "taskq_queue_oldest_age_seconds", queue="work")
    assert oldest is not None and 0 <= oldest < 60
    assert value(samples, "taskq_active_worker_count", queue="work") == 2
    assert value(samples, "taskq_active_process_count", queue="work") == 6
    assert value(samples, "taskq_active_worker_count", queue="idle") == 0
    assert value(samples, "taskq_worker_up", worker="taskq@alive") == 1
    assert value(samples, "taskq_worker_up", worker="taskq@gone") == 0
    assert value(samples, "taskq_worker_up", worker="taskq@garbage") == 1
    # Two processes of one hostname are one series; only one tells what it runs.
    assert value(samples, "taskq_worker_tasks_active", worker="taskq@alive") == 1
    assert value(samples, "taskq_worker_tasks_active", worker="taskq@gone") is None
    assert value(samples, "taskq_scrape_duration_seconds") is not None


def test_an_empty_redis_scrapes_cleanly(broker: Any) -> None:
    samples, _ = scrape()
    assert value(samples, "taskq_broker_up") == 1
    assert {n for n in names(samples) if not n.startswith("taskq_scrape")} == {"taskq_broker_up"}


def test_a_scrape_while_redis_is_away_says_so(broker: Any) -> None:
    with override_settings(TASKQ_BROKER_URL="redis://127.0.0.1:1/0"):
        samples, _ = scrape()
    assert value(samples, "taskq_broker_up") == 0
    assert names(samples) == {"taskq_broker_up", "taskq_scrape_duration_seconds"}


def test_a_hundred_queues_scrape_fast(broker: Any) -> None:
    batch = counters.Batch()
    for i in range(100):
        queue = f"q{i:03}"
        add.apply_async((i, i), queue=queue)
        batch.task_ended(queue, "tasks.a", "taskq@h", counters.SUCCEEDED, runtime=0.1, wait=0.1)
    _write(broker, batch)
    started = time.perf_counter()
    samples, _ = scrape()
    elapsed = time.perf_counter() - started
    assert sum(1 for (n, _) in samples if n == "taskq_queue_length") == 100
    assert sum(1 for (n, _) in samples if n == "taskq_task_succeeded_total") == 100
    assert elapsed < 2.0, elapsed


def test_label_values_are_escaped(broker: Any) -> None:
    odd = 'tasks.odd"name\\with\nnewline'
    batch = counters.Batch()
    batch.task_ended("work", odd, "taskq@h", counters.SUCCEEDED, runtime=0.1, wait=0.1)
    _write(broker, batch)
    registry.register(broker, ["work"])
    samples, _ = scrape()
    assert value(samples, "taskq_task_succeeded_total", name=odd, queue="work", worker="taskq@h")


def test_worker_descriptions_are_json_of_the_heartbeat(broker: Any) -> None:
    """The gauges read what worker/heartbeat.py writes (this guards the format they share)."""
    _beat("taskq@x:1:aa", "taskq@x", ["q"], 3)
    info = json.loads(broker.get(keys.worker_info("taskq@x:1:aa")))
    assert info["hostname"] == "taskq@x" and info["queues"] == ["q"] and info["concurrency"] == 3


def test_the_history_recorders_backlog_per_queue(broker: Any) -> None:
    """taskq_history_lag / _pending: events not read yet, and read but not yet written."""
    from django_taskq.history.reader import GROUP

    registry.register(broker, ["work", "quiet"])
    stream = keys.events("work")
    for i in range(5):
        broker.xadd(stream, {"e": f'[{{"k":"sent","id":"t{i}","ts":1}}]'})
    broker.xgroup_create(stream, GROUP, id="0")
    [(_, read)] = broker.xreadgroup(GROUP, "recorder-1", {stream: ">"}, count=2)
    broker.xack(stream, GROUP, read[0][0])  # one written, one still pending
    samples, types = scrape()
    assert types["taskq_history_lag"] == "gauge"
    assert value(samples, "taskq_history_lag", queue="work") == 3
    assert value(samples, "taskq_history_pending", queue="work") == 1
    assert value(samples, "taskq_history_lag", queue="quiet") is None  # no recorder group


def test_whatever_bytes_are_in_redis_the_scrape_answers(broker: Any) -> None:
    """Counter fields and worker records written by anything: no 500, the good series stay."""
    batch = counters.Batch()
    batch.task_ended("work", "tasks.good", "taskq@h", counters.SUCCEEDED, runtime=0.1, wait=0.1)
    _write(broker, batch)
    registry.register(broker, ["work"])
    broker.hset(
        keys.metrics("work"),
        mapping={
            b"succeeded\t\xed\xa0\x80\ttaskq@h": 1,
            b"succeeded\tonly-two": 2,
            b"\xff\xfe": 3,
            b"succeeded\ttasks.x\ttaskq@h": b"not a number",
            b"runtime\ttasks.x\ttaskq@h\tnot-a-bound": 1,
        },
    )
    name = "taskq@odd:1:aa"
    broker.zadd(keys.workers(), {name: time.time() * 1000})
    broker.set(keys.worker_info(name), '{"hostname": "h\\ud800", "queues": ["work\\udcff"]}')
    samples, _ = scrape()
    assert value(samples, "taskq_broker_up") == 1
    labels = {"name": "tasks.good", "queue": "work", "worker": "taskq@h"}
    good = value(samples, "taskq_task_succeeded_total", **labels)
    assert good == 1
