"""Redis restarts under load (SIGTERM, then SIGKILL), with appendonly yes, appendfsync always.

A persistent redis-server of the test's own (fixed port and directory, so
a restart keeps the data) serves a worker and a producer thread that keeps
calling ``delay()`` through every restart. Exactly:

- the worker resumes by itself after each restart (a task sent after it
  finishes), and every ``delay()`` that returned ran: 0 lost;
- each ``delay()`` either returned or raised ``BrokerUnavailable``, and
  took at most TASKQ_PUBLISH_TIMEOUT (5 s if unset) plus half a second of
  scheduling slack, whichever way it went; nothing else was raised;
- nothing is left pending or in the streams.

Calls that raised are counted apart: they may or may not have reached
Redis, so how many of them ran anyway is a figure, not a failure.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from django_taskq.broker.connection import get_broker
from django_taskq.testing import RedisServer
from tests.faults import helpers
from tests.faults.load import Producer
from tests.faults.recorder import Recorder
from tests.faults.scale import SCALE
from tests.faults.tasks import fault_slow

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

HEARTBEAT = 3.0
DOWN_FOR = 1.0
SLACK = 0.5
BACKLOG = 300


def test_redis_restarts_under_load_lose_nothing(
    start_worker: Any, recorder: Recorder, figures: dict[str, Any]
) -> None:
    bound = float(getattr(settings, "TASKQ_PUBLISH_TIMEOUT", 5))
    server = RedisServer(appendonly=True, appendfsync="always").start()
    worker = None
    try:
        with override_settings(TASKQ_BROKER_URL=server.url):
            env = {"TASKQ_BROKER_URL": server.url, "TASKQ_WORKER_HEARTBEAT_TIMEOUT": str(HEARTBEAT)}
            worker = start_worker("-c", "2", env=env)
            helpers.wait_children(worker, 2)
            producer = Producer(fault_slow, (0.005,), interval=0.003).start()
            restarts: list[dict[str, Any]] = []
            problems: list[str] = []
            modes = ["SIGTERM", "SIGKILL"] * SCALE.redis_restarts
            backlog: list[str] = []
            for mode in modes:
                # Under load first: tasks sent lately are finishing.
                since = time.time()
                if not recorder.wait_finished(_wait_for_sent(producer, since, 100), 30):
                    problems.append(f"before the {mode} restart: no progress")
                    break
                # ...and a backlog, so that the restart hits messages waiting, fetched and running.
                backlog += [r.id for r in fault_slow.delay_many([(0.005, -1)] * BACKLOG)]
                down_at = time.time()
                server.restart(down_for=DOWN_FOR, graceful=mode == "SIGTERM")
                up_at = time.time()
                first = _wait_for_sent(producer, up_at, 20)
                resumed = recorder.wait_finished(first, 60)
                tally = recorder.read()
                restarts.append(
                    {
                        "mode": mode,
                        "down_s": round(up_at - down_at, 2),
                        "resume_s": (
                            round(min(tally.ends(i)[0] for i in first) - up_at, 3)
                            if resumed
                            else None
                        ),
                    }
                )
                if not resumed:
                    problems.append(f"the worker did not resume within 60 s after {mode}")
            producer.stop()
            ok_ids = producer.ok_ids() + backlog
            finished = recorder.wait_finished(ok_ids, 3 * HEARTBEAT + 30)
            client = get_broker()
            settled = helpers.wait_until(
                lambda: helpers.pending(client) == 0 and helpers.stream_entries(client) == 0,
                3 * HEARTBEAT + 10 if finished else 0,
            )
            tally = recorder.read()
            failed = producer.failed()
            unavailable = [c for c in failed if c.outcome == "unavailable"]
            other = [c for c in failed if c.outcome != "unavailable"]
            ok_calls = [c for c in producer.calls if c.outcome == "ok"]
            lost = tally.lost(ok_ids)
            figures.update(
                publish_timeout_s=bound,
                restarts=restarts,
                resume_s=[r["resume_s"] for r in restarts],
                delay_ok=len(ok_ids) - len(backlog),
                backlog_sent=len(backlog),
                delay_unavailable=len(unavailable),
                delay_other_errors=len(other),
                unavailable_but_ran=len(tally.ran([c.task_id for c in unavailable])),
                max_failed_delay_s=round(max((c.took for c in failed), default=0.0), 3),
                max_ok_delay_s=round(max((c.took for c in ok_calls), default=0.0), 3),
                lost=len(lost),
                duplicates=len(tally.duplicates()),
                left_pending=helpers.pending(client),
                left_in_streams=helpers.stream_entries(client),
                pending_detail=helpers.pending_detail(client),
                worker_alive=worker.process.poll() is None,
            )
            if lost or not finished:
                problems.append(f"{len(lost)} of {len(ok_ids)} sent tasks lost")
            if other:
                problems.append(f"{len(other)} delay() calls raised, e.g. {other[0].outcome}")
            slow = [c for c in producer.calls if c.took > bound + SLACK]
            if slow:
                worst = max(slow, key=lambda c: c.took)
                problems.append(
                    f"{len(slow)} delay() calls took longer than {bound} s "
                    f"(TASKQ_PUBLISH_TIMEOUT) + {SLACK} s: the worst {worst.took:.2f} s "
                    f"({worst.outcome})"
                )
            if not settled:
                problems.append(
                    f"left behind: {helpers.pending(client)} pending, "
                    f"{helpers.stream_entries(client)} in streams"
                )
            if worker.process.poll() is not None:
                problems.append(f"the worker exited with {worker.process.returncode}")
            assert not problems, "\n".join(problems)
    finally:
        if worker is not None:
            worker.stop(timeout=10)
            worker.kill()
        server.close()


def _wait_for_sent(producer: Producer, since: float, count: int, timeout: float = 60) -> list[str]:
    """The first ``count`` ids the producer sent successfully after ``since``."""
    helpers.wait_until(lambda: len(producer.ok_after(since)) >= count, timeout)
    return producer.ok_after(since)[:count]
