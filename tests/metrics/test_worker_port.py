"""``taskq_worker --metrics-port`` with a real worker subprocess, scraped over HTTP."""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.metrics.scrape import Samples, parse, value
from tests.testapp.tasks import add, sleep_then

pytestmark = pytest.mark.e2e

TOKEN = "worker-port-token"
HOST = "taskq@metrics-test"


def _start(start_worker: Any, *args: str) -> tuple[Any, str]:
    worker = start_worker(
        "-n",
        HOST,
        "--metrics-port",
        "0",
        "--metrics-addr",
        "127.0.0.1",
        *args,
        env={"TASKQ_METRICS_TOKEN": TOKEN},
    )
    found = re.search(r"metrics:\s+(http://\S+)", worker.wait_for_line("metrics:"))
    assert found, worker.output
    return worker, found.group(1)


def _get(url: str, token: str | None = TOKEN) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _scrape(url: str) -> Samples:
    status, _, body = _get(url)
    assert status == 200, body
    return parse(body.decode())[0]


def _listening_inode(port: int) -> str:
    """The inode of the socket listening on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return inode
    raise AssertionError(f"nothing listens on port {port}")


def _holds(pid: int, inode: str) -> bool:
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            if os.readlink(f"{folder}/{fd}") == f"socket:[{inode}]":
                return True
        except OSError:
            continue
    return False


def test_the_worker_serves_metrics_behind_the_token(start_worker: Any, broker: Any) -> None:
    worker, url = _start(start_worker, "-P", "prefork", "-c", "2")
    status, headers, body = _get(url, token=None)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer ")
    assert b"taskq_" not in body
    assert _get(url, token="wrong")[0] == 401

    samples = _scrape(url)
    assert value(samples, "taskq_broker_up") == 1
    assert value(samples, "taskq_worker_up", worker=HOST) == 1
    assert value(samples, "taskq_worker_tasks_active", worker=HOST) == 0  # from its heartbeat
    assert value(samples, "taskq_active_worker_count", queue="default") == 1
    assert value(samples, "taskq_active_process_count", queue="default") == 2

    # A running task shows within a heartbeat (the worker's description lists it).
    running = sleep_then.delay(5, "done")
    deadline = time.monotonic() + 10
    while value(_scrape(url), "taskq_worker_tasks_active", worker=HOST) != 1:
        assert time.monotonic() < deadline, "the running task never showed"
        time.sleep(0.1)
    assert running.get(timeout=15) == "done"

    # Only the parent serves: prefork children closed their copy of the socket.
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    inode = _listening_inode(port)
    assert _holds(worker.pid, inode)
    children = worker.children()
    assert children and not any(_holds(pid, inode) for pid in children)

    worker.stop()
    assert worker.wait() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_worker_s_scrape_counts_the_tasks_it_ran(start_worker: Any, broker: Any) -> None:
    """End to end: tasks run by a real worker show in taskq_task_succeeded_total.

    Needs the hot path to write the counters (metrics/counters.Batch in the
    worker's flush).
    """
    _worker, url = _start(start_worker, "-P", "solo")
    results = [add.delay(i, i) for i in range(3)]
    assert [r.get(timeout=15) for r in results] == [0, 2, 4]
    series = {"name": "tests.testapp.tasks.add", "queue": "default", "worker": HOST}
    deadline = time.monotonic() + 10
    while True:  # the counters are flushed with the results, a few ms apart at most
        samples = _scrape(url)
        if value(samples, "taskq_task_succeeded_total", **series) == 3:
            break
        assert time.monotonic() < deadline, f"succeeded: {samples}"
        time.sleep(0.1)
    assert value(samples, "taskq_task_started_total", **series) == 3
    assert value(samples, "taskq_task_failed_total", **series) == 0
    assert value(samples, "taskq_task_runtime_seconds_count", **series) == 3
    assert value(samples, "taskq_queue_length", queue="default") == 0
