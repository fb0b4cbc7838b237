"""``taskq_worker --max-tasks``, ``--shutdown-timeout``, ``--no-graceful-shutdown`` and the
burst exit codes, on real workers.

django-tasks-redis's ``run_redis_tasks`` has these flags; the worker here
has them too. Nothing is timed: the tests wait for the worker's exit, for a
task's start (BLPOP on ``<key>:started``) or for a log line.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from django_taskq import AsyncResult, send_task, states
from django_taskq.monitor.queues import queue_stats
from tests.testapp.tasks import add, async_add, fail, gated, interruptible

pytestmark = pytest.mark.e2e

POOLS = {
    "solo": ["-P", "solo"],
    "threads": ["-P", "threads", "-c", "2"],
    "prefork": ["-P", "prefork", "-c", "2"],
}


def _succeeded(results: list[Any]) -> int:
    return sum(AsyncResult(r.id).state == states.SUCCESS for r in results)


def _started(broker: Any, key: str) -> int:
    found = broker.blpop([f"{key}:started"], timeout=20)
    assert found is not None, "the task never started"
    return int(found[1])


# -- --max-tasks ------------------------------------------------------------------
@pytest.mark.parametrize("pool", list(POOLS))
def test_max_tasks_stops_the_worker_after_n_tasks(start_worker: Any, pool: str) -> None:
    sent = [add.delay(i, i) for i in range(12)]
    worker = start_worker(*POOLS[pool], "--max-tasks", "4", wait_ready=False)
    assert worker.wait(timeout=60) == 0
    done = _succeeded(sent)
    # One consumer stops at exactly 4; with two, the other may end the one it had started.
    assert 4 <= done <= (4 if pool == "solo" else 5), done
    worker.wait_for_line("(--max-tasks 4); warm shutdown")
    worker.wait_for_line("max tasks:   stops after 4 (--max-tasks)")
    # What it fetched and did not start went back to the queue: a burst runs the rest.
    assert queue_stats(["default"])[0].ready == 12 - done
    rest = start_worker("-P", "solo", "--burst", wait_ready=False)
    assert rest.wait(timeout=60) == 0
    assert _succeeded(sent) == 12


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_max_tasks_with_an_async_lane(start_worker: Any, pool: str) -> None:
    sent = [async_add.delay(i, 1) for i in range(12)]
    worker = start_worker(
        *POOLS[pool][:2],
        "-c",
        "1",
        "--async-concurrency",
        "4",
        "--max-tasks",
        "3",
        wait_ready=False,
    )
    assert worker.wait(timeout=60) == 0
    done = _succeeded(sent)
    # The lane starts none after the 3rd ended; those it had in flight end (at most 3 more).
    assert 3 <= done <= 6, done
    assert queue_stats(["default"])[0].ready == 12 - done


def test_max_tasks_counts_failures_too(start_worker: Any) -> None:
    failing = [fail.delay("max-tasks") for _ in range(2)]
    later = add.delay(1, 1)
    worker = start_worker("-P", "solo", "--max-tasks", "2", wait_ready=False)
    assert worker.wait(timeout=30) == 0
    assert [AsyncResult(r.id).state for r in failing] == [states.FAILURE] * 2
    assert AsyncResult(later.id).state == states.PENDING


# -- --shutdown-timeout -----------------------------------------------------------
def test_shutdown_timeout_turns_a_warm_shutdown_cold_in_solo(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-P", "solo", "--shutdown-timeout", "0.5")
    result = interruptible.delay("st-solo", 120)
    _started(broker, "st-solo")
    worker.signal(15)
    assert worker.wait(timeout=30) == 0
    worker.wait_for_line("warm shutdown not finished after 0.5s (--shutdown-timeout)")
    worker.wait_for_line("cold shutdown: interrupting tasks")
    assert broker.lrange("st-solo", 0, -1) == [b"cleanup"]  # interrupted, not finished
    assert AsyncResult(result.id).state != states.SUCCESS
    assert queue_stats(["default"])[0].ready == 1  # handed back, to run again


def test_shutdown_timeout_in_threads_hands_the_message_back(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "threads", "-c", "1", "--shutdown-timeout", "0.5")
    result = gated.delay("st-threads", 120)
    _started(broker, "st-threads")
    worker.signal(15)
    # The thread cannot be interrupted: the process exits around it.
    assert worker.wait(timeout=30) == 0
    worker.wait_for_line("warm shutdown not finished after 0.5s (--shutdown-timeout)")
    assert AsyncResult(result.id).state != states.SUCCESS
    assert queue_stats(["default"])[0].ready == 1  # handed back, to run again


def test_shutdown_timeout_kills_prefork_children(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "1", "--shutdown-timeout", "0.5")
    result = gated.delay("st-prefork", 120)
    _started(broker, "st-prefork")
    worker.signal(15)
    assert worker.wait(timeout=30) == 0
    worker.wait_for_line("warm shutdown not finished after 0.5s (--shutdown-timeout)")
    worker.wait_for_line("cold shutdown: interrupting tasks")
    assert AsyncResult(result.id).state != states.SUCCESS
    assert queue_stats(["default"])[0].ready == 1


def test_a_warm_shutdown_that_finishes_in_time_stays_warm(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "threads", "-c", "1", "--shutdown-timeout", "60")
    result = gated.delay("st-warm", 60)
    _started(broker, "st-warm")
    worker.signal(15)
    worker.wait_for_line("warm shutdown (SIGTERM)")
    broker.rpush("st-warm", "go")
    assert worker.wait(timeout=30) == 0
    assert AsyncResult(result.id).state == states.SUCCESS
    assert "warm shutdown not finished" not in worker.output


# -- --no-graceful-shutdown ------------------------------------------------------------
@pytest.mark.parametrize(
    ("pool", "signum"),
    [
        ("solo", signal.SIGTERM),
        ("threads", signal.SIGTERM),
        ("prefork", signal.SIGTERM),
        ("solo", signal.SIGINT),
        ("prefork", signal.SIGINT),
    ],
)
def test_no_graceful_shutdown_is_cold_at_the_first_signal_and_loses_nothing(
    start_worker: Any, broker: Any, pool: str, signum: int
) -> None:
    """The first signal interrupts the task and hands it back; the next worker runs it."""
    key = f"ngs-{pool}-{signum}"
    worker = start_worker(*POOLS[pool], "--no-graceful-shutdown")
    assert "cold at the first signal" in worker.output  # the banner says so
    result = gated.delay(key, 120)
    first_pid = _started(broker, key)
    began = time.monotonic()
    worker.signal(signum)
    assert worker.wait(timeout=30) == 0
    # Prompt: the task would have held a warm shutdown for 120 s.
    assert time.monotonic() - began < 15
    name = signal.Signals(signum).name
    worker.wait_for_line(f"cold shutdown ({name}, --no-graceful-shutdown)")
    assert "warm shutdown" not in worker.output
    assert AsyncResult(result.id).state != states.SUCCESS
    assert queue_stats(["default"])[0].ready == 1  # handed back, not lost

    start_worker(*POOLS[pool])
    second_pid = _started(broker, key)  # the same message runs again...
    broker.rpush(key, "go")
    assert AsyncResult(result.id).get(timeout=30) == second_pid != first_pid  # ...to its end
    assert queue_stats(["default"])[0].ready == 0


# -- --failed-exit-code, --empty-exit-code ----------------------------------------
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_failed_exit_code_when_a_task_failed(start_worker: Any, pool: str) -> None:
    ok = add.delay(1, 2)
    failed = fail.delay("exit-code")
    worker = start_worker(*POOLS[pool], "--burst", "--failed-exit-code", "3", wait_ready=False)
    assert worker.wait(timeout=60) == 3
    assert AsyncResult(ok.id).state == states.SUCCESS
    assert AsyncResult(failed.id).state == states.FAILURE
    worker.wait_for_line("burst: 1 task(s) failed or were dead-lettered; exit code 3")


def test_failed_exit_code_when_a_message_was_dead_lettered(start_worker: Any) -> None:
    send_task("tests.testapp.tasks.no_such_task")
    worker = start_worker("-P", "threads", "--burst", "--failed-exit-code", "3", wait_ready=False)
    assert worker.wait(timeout=30) == 3


def test_no_failure_exits_0(start_worker: Any) -> None:
    sent = add.delay(1, 2)
    worker = start_worker(
        "-P",
        "solo",
        "--burst",
        "--failed-exit-code",
        "3",
        "--empty-exit-code",
        "4",
        wait_ready=False,
    )
    assert worker.wait(timeout=30) == 0
    assert AsyncResult(sent.id).state == states.SUCCESS


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_empty_exit_code_when_nothing_was_there(start_worker: Any, pool: str) -> None:
    worker = start_worker(*POOLS[pool], "--burst", "--empty-exit-code", "4", wait_ready=False)
    assert worker.wait(timeout=30) == 4
    worker.wait_for_line("burst: nothing was run; exit code 4 (--empty-exit-code)")
