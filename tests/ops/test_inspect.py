"""``taskq_inspect`` subcommands and their Python API, answered by real worker processes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.core.management.base import CommandError

from django_taskq import control
from django_taskq.broker import keys
from django_taskq.broker.publish import run_pipeline
from django_taskq.metrics import counters
from django_taskq.monitor.workers import workers
from tests.ops.helpers import (
    REPLY_TIMEOUT,
    command,
    command_json,
    manage,
    only_reply,
    release,
    started,
)
from tests.testapp.tasks import add, gated


def test_ping_every_worker_and_one_by_name(start_worker: Any) -> None:
    start_worker("-P", "solo", "-n", "a@test")
    start_worker("-P", "threads", "-c", "2", "-n", "b@test")
    replies = control.ping(timeout=15)
    assert replies.ok and replies.missing == []
    assert replies.results() == {"a@test": "pong", "b@test": "pong"}
    data = command_json("taskq_inspect", "ping", "-d", "b@test", "--timeout", REPLY_TIMEOUT)
    assert only_reply(data) == {"hostname": "b@test", "ok": True, "result": "pong"}
    out, _ = command("taskq_inspect", "ping", "--timeout", REPLY_TIMEOUT)
    assert "-> a@test (" in out and "-> b@test (" in out and out.count("pong") == 2


def test_a_destination_that_does_not_exist_is_named_after_the_timeout(
    start_worker: Any,
) -> None:
    start_worker("-P", "solo", "-n", "real@test")
    begun = time.monotonic()
    replies = control.ping(destination=["real@test", "ghost@test"], timeout=1.0)
    waited = time.monotonic() - begun
    assert replies.results() == {"real@test": "pong"}
    assert replies.missing == ["ghost@test"] and not replies.ok
    assert 1.0 <= waited < 5.0
    done = manage("taskq_inspect", "ping", "-d", "ghost@test", "--timeout", "0.5", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "op": "ping",
        "replies": {},
        "no_reply": ["ghost@test"],
        "timeout": 0.5,
    }
    assert done.stderr.strip() == "CommandError: no reply within 0.5s from ghost@test"


def test_with_no_worker_online_the_command_says_so(broker: Any) -> None:
    with pytest.raises(CommandError, match="no worker is online"):
        command("taskq_inspect", "ping", "--timeout", "0.5")


def test_active_lists_running_tasks_with_runtime_in_every_pool(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-P", "prefork", "-c", "2", "-n", "pre@test")
    start_worker("-P", "solo", "-n", "solo@test", "-Q", "solo")
    one = gated.delay("g1")
    two = gated.apply_async(("g2",), queue="solo")
    started(broker, "g1")
    started(broker, "g2")
    data = command_json("taskq_inspect", "active", "--timeout", REPLY_TIMEOUT)
    assert data["no_reply"] == []
    by_host = {r["hostname"]: r["result"] for r in data["replies"].values()}
    [pre] = by_host["pre@test"]
    [solo] = by_host["solo@test"]
    assert pre["task_id"] == one.id and solo["task_id"] == two.id
    assert pre["task"] == "tests.testapp.tasks.gated" and pre["args"] == "['g1']"
    assert pre["queue"] == "default" and solo["queue"] == "solo"
    assert pre["runtime"] >= 0 and pre["started"] <= time.time()
    out, _ = command("taskq_inspect", "active", "-d", "solo@test", "--timeout", REPLY_TIMEOUT)
    assert f"tests.testapp.tasks.gated[{two.id}] on solo, running" in out
    release(broker, "g1")
    release(broker, "g2")
    one.get(timeout=15)
    assert control.active(destination="pre@test", timeout=15).results() == {"pre@test": []}


def test_reserved_lists_fetched_messages_that_did_not_start(start_worker: Any, broker: Any) -> None:
    """Pending entries of the worker's consumers, minus the running one.

    A consumer hands back what it prefetched once a task runs for a second,
    so the test makes the fetch itself: it reads one message under the name
    of the worker's consumer (XREADGROUP), exactly as a prefetch would.
    """
    start_worker("-P", "solo", "-n", "res@test")
    running = gated.delay("res")
    started(broker, "res")
    waiting = add.delay(1, 2)
    [consumer] = control.stats(timeout=15).results()["res@test"]["consumers"]
    broker.xreadgroup(keys.GROUP, consumer, {keys.stream("default", 5): ">"}, count=1)
    [reply] = command_json("taskq_inspect", "reserved", "--timeout", REPLY_TIMEOUT)[
        "replies"
    ].values()
    [row] = reply["result"]
    assert row["task_id"] == waiting.id and row["consumer"] == consumer
    assert row["task"] == "tests.testapp.tasks.add" and row["args"] == "[1, 2]"
    found = control.query_task([running.id, waiting.id, "nope"], timeout=15).results()
    assert found["res@test"][running.id]["state"] == "active"
    assert found["res@test"][waiting.id]["state"] == "reserved"
    assert "nope" not in found["res@test"]
    out, _ = command("taskq_inspect", "query_task", running.id, "--timeout", REPLY_TIMEOUT)
    assert f"{running.id}: active tests.testapp.tasks.gated on default" in out
    release(broker, "res")
    running.get(timeout=15)


def test_scheduled_lists_delayed_messages_of_the_workers_queues(start_worker: Any) -> None:
    start_worker("-P", "solo", "-n", "sch@test", "-Q", "default,later")
    soon = add.apply_async((1, 1), countdown=600)
    late = add.apply_async((2, 2), countdown=900, queue="later", priority=7)
    add.apply_async((3, 3), countdown=600, queue="elsewhere")
    data = command_json("taskq_inspect", "scheduled", "--timeout", REPLY_TIMEOUT)
    result = only_reply(data)["result"]
    assert set(result) == {"default", "later"}
    [row] = result["default"]
    assert row["task_id"] == soon.id and row["args"] == "[1, 1]"
    assert 590 < row["eta"] - time.time() <= 600
    [row] = result["later"]
    assert (row["task_id"], row["priority"]) == (late.id, 7)
    out, _ = command("taskq_inspect", "scheduled", "--limit", "1", "--timeout", REPLY_TIMEOUT)
    assert f"tests.testapp.tasks.add[{late.id}] priority 7 args=[2, 2]" in out


def test_registered_and_stats(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "2", "-n", "st@test")
    batch = counters.Batch()
    batch.task_ended("default", "tests.testapp.tasks.add", "st@test", counters.SUCCEEDED, 0.1, 0)
    # Through run_pipeline, as the worker writes them: it loads the scripts
    # when this Redis has none yet (a bare pipeline failed with NoScriptError).
    run_pipeline(broker, lambda pipe: batch.queue_writes(pipe, broker))
    registered = only_reply(command_json("taskq_inspect", "registered"))["result"]
    names = {row["name"]: row for row in registered}
    assert names["tests.testapp.tasks.limited"]["rate_limit"] == "5/s"
    assert names["tests.testapp.tasks.hard_limited"]["time_limit"] == 1
    out, _ = command("taskq_inspect", "registered", "--timeout", REPLY_TIMEOUT)
    assert "tests.testapp.tasks.limited [rate_limit=5/s]" in out
    stats = only_reply(command_json("taskq_inspect", "stats", "--timeout", REPLY_TIMEOUT))
    result = stats["result"]
    assert result["pid"] == worker.pid and result["pool"] == "prefork"
    assert result["concurrency"] == 2 and len(result["processes"]) == 2
    assert sorted(result["processes"]) == sorted(worker.children())
    assert result["processed"] == 1 and result["failed"] == 0
    assert result["queues"] == ["default"] and result["uptime"] > 0
    assert len(result["consumers"]) == 2


def test_the_overview_is_kept_without_a_subcommand(start_worker: Any) -> None:
    start_worker("-P", "solo", "-n", "ov@test")
    add.apply_async((1, 1), countdown=600)
    out, _ = command("taskq_inspect")
    assert "Delayed (ETA/countdown/retry): 1" in out
    assert "ov@test pid" in out and "running 0" in out
    data = json.loads(command("taskq_inspect", "--json")[0])
    [worker] = data["workers"]
    assert worker["hostname"] == "ov@test" and worker["running"] == []
    assert [w.hostname for w in workers()] == ["ov@test"]
    assert [w["hostname"] for w in control.workers()] == ["ov@test"]  # the 0.1 name
