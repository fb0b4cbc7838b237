"""The async lane (worker/lane.py): several ``async def`` tasks at once in one consumer.

Every worker here has one consumer (solo, one thread, one prefork child) and
``--async-concurrency``, so what runs at once runs in that consumer's lane.
Nothing is timed: concurrency is shown by tasks that wait for one another
(they would wait for ever one by one), the cap by the count of lane tasks
each saw running as it started, and every wait is a BLPOP on what a task
writes.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from django_taskq.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from django_taskq.result import AsyncResult
from tests.ops.helpers import wait_until
from tests.testapp.tasks import add, async_fail, async_flaky, lane_early, lane_wait

pytestmark = pytest.mark.e2e

POOLS = {
    "solo": ["-P", "solo"],
    "threads": ["-P", "threads", "-c", "1"],
    "prefork": ["-P", "prefork", "-c", "1"],
}


def _worker(start_worker: Any, pool: str, n: int, *more: str) -> Any:
    return start_worker(*POOLS[pool], "--async-concurrency", str(n), *more)


def _started(broker: Any, key: str, count: int = 1) -> list[str]:
    """Wait for ``count`` more lane_wait tasks of ``key`` to start; their ids."""
    ids = []
    for _ in range(count):
        found = broker.blpop([f"{key}:started"], timeout=20)
        assert found is not None, "a task never started"
        ids.append(found[1].decode())
    return ids


def _let_go(broker: Any, key: str, count: int) -> None:
    broker.rpush("{" + key + "}:go", *(["go"] * count))


def _seen(broker: Any, key: str) -> list[int]:
    return [int(v) for v in broker.lrange("{" + key + "}:seen", 0, -1)]


def _own(result: Any, outcome: dict[str, Any]) -> None:
    """The task read its own request before and after its waits, and in sync_to_async's thread."""
    assert outcome["before"] == outcome["after"] == outcome["in_thread"] == result.id


@pytest.mark.parametrize("pool", list(POOLS))
def test_n_async_tasks_run_at_once_each_with_its_own_request(
    start_worker: Any, broker: Any, pool: str
) -> None:
    _worker(start_worker, pool, 4)
    # Each waits until all four have started: one at a time, none would end.
    results = [lane_wait.delay("lane-meet", 4) for _ in range(4)]
    outcomes = [r.get(timeout=30) for r in results]
    for result, outcome in zip(results, outcomes, strict=True):
        _own(result, outcome)
        assert outcome["delivery"] == 1
    assert len({o["pid"] for o in outcomes}) == 1  # one consumer ran them all
    assert max(_seen(broker, "lane-meet")) == 4


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_the_lane_runs_at_most_n_at_once(start_worker: Any, broker: Any, pool: str) -> None:
    _worker(start_worker, pool, 3)
    results = [lane_wait.delay("lane-cap") for _ in range(4)]
    first = _started(broker, "lane-cap", 3)
    assert broker.llen("lane-cap:started") == 0  # (the fourth may come only after one ends)
    _let_go(broker, "lane-cap", 1)
    fourth = _started(broker, "lane-cap", 1)
    assert fourth[0] not in first
    _let_go(broker, "lane-cap", 3)
    for result in results:
        _own(result, result.get(timeout=20))
    seen = _seen(broker, "lane-cap")
    assert len(seen) == 4 and max(seen) == 3, seen


@pytest.mark.parametrize("pool", list(POOLS))
def test_time_limits_cancel_only_their_lane_task(start_worker: Any, broker: Any, pool: str) -> None:
    _worker(start_worker, pool, 3)
    key = "lane-limits"
    holder = lane_wait.delay(key)
    _started(broker, key)
    soft = lane_wait.apply_async((key,), soft_time_limit=0.3)
    hard = lane_wait.apply_async((key,), time_limit=0.3)
    with pytest.raises(SoftTimeLimitExceeded):
        soft.get(timeout=20)
    with pytest.raises(TimeLimitExceeded, match="hard time limit"):
        hard.get(timeout=20)
    assert broker.get(f"{key}:cancelled:{soft.id}") == b"1"  # cancelled where it awaited
    assert broker.get(f"{key}:cancelled:{hard.id}") == b"1"
    assert broker.get(f"{key}:cancelled:{holder.id}") is None
    _let_go(broker, key, 1)
    outcome = holder.get(timeout=20)
    _own(holder, outcome)
    assert outcome["delivery"] == 1  # its process was not killed under it


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_retry_and_a_failure_end_beside_a_running_lane_task(
    start_worker: Any, broker: Any, pool: str
) -> None:
    _worker(start_worker, pool, 3)
    key = "lane-endings"
    holder = lane_wait.delay(key)
    _started(broker, key)
    assert async_flaky.delay("lane:flaky").get(timeout=20) == 2  # retried once
    failed = async_fail.delay("lane broke")
    with pytest.raises(ValueError, match="lane broke"):
        failed.get(timeout=20)
    assert "raise ValueError(message)" in (failed.traceback or "")
    assert not holder.ready()  # all the while it was in flight
    _let_go(broker, key, 1)
    _own(holder, holder.get(timeout=20))


@pytest.mark.parametrize("pool", list(POOLS))
def test_terminate_cancels_one_lane_task(start_worker: Any, broker: Any, pool: str) -> None:
    _worker(start_worker, pool, 3)
    key = "lane-term"
    kept = lane_wait.delay(key)
    _started(broker, key)
    ended = lane_wait.delay(key)
    _started(broker, key)
    ended.revoke(terminate=True)  # SIGKILL: still only this task is cancelled
    with pytest.raises(TaskRevokedError):
        ended.get(timeout=15)
    wait_until(
        lambda: (
            "terminated by revoke(terminate=True) with SIGKILL" in str(AsyncResult(ended.id).result)
        ),
        "the worker's REVOKED record",
    )
    assert broker.get(f"{key}:cancelled:{ended.id}") == b"1"
    _let_go(broker, key, 1)
    outcome = kept.get(timeout=20)
    _own(kept, outcome)
    assert outcome["delivery"] == 1


@pytest.mark.parametrize("pool", ["solo", "threads", "prefork"])
def test_a_warm_stop_waits_for_lane_tasks_and_leaves_the_rest_queued(
    start_worker: Any, broker: Any, pool: str
) -> None:
    worker = _worker(start_worker, pool, 2)
    key = "lane-stop"
    running = [lane_wait.delay(key) for _ in range(2)]
    _started(broker, key, 2)
    waiting = lane_wait.delay(key)
    worker.signal(signal.SIGTERM)
    # The consumer has seen the stop (a prefork child hears of it from its parent).
    worker.wait_for_line("warm shutdown waits for 2 async task(s) in flight")
    _let_go(broker, key, 2)
    for result in running:
        _own(result, result.get(timeout=20))
    assert worker.wait(timeout=20) == 0
    assert AsyncResult(waiting.id).state == "PENDING"  # not started, not lost
    _worker(start_worker, pool, 2)
    _started(broker, key)
    _let_go(broker, key, 1)
    _own(waiting, waiting.get(timeout=20))


def test_max_tasks_per_child_counts_lane_tasks(start_worker: Any, broker: Any) -> None:
    worker = _worker(start_worker, "prefork", 2, "--max-tasks-per-child", "2")
    results = [lane_wait.delay("lane-recycle", 2) for _ in range(2)]
    outcomes = [r.get(timeout=30) for r in results]
    assert outcomes[0]["pid"] == outcomes[1]["pid"]
    worker.wait_for_line("recycles after 2 tasks")
    later = lane_wait.delay("lane-recycle-2", 1)
    assert later.get(timeout=30)["pid"] != outcomes[0]["pid"]  # a new child


@pytest.mark.parametrize("pool", list(POOLS))
def test_a_cold_stop_hands_lane_tasks_back_unsettled(
    start_worker: Any, broker: Any, pool: str
) -> None:
    worker = _worker(start_worker, pool, 2)
    key = "lane-cold"
    results = [lane_wait.delay(key) for _ in range(2)]
    _started(broker, key, 2)
    worker.signal(signal.SIGTERM)
    worker.wait_for_line("warm shutdown waits for 2 async task(s) in flight")
    worker.signal(signal.SIGTERM)  # the second: cold
    worker.wait(timeout=20)
    # Neither failed nor was acked: both run again on the next worker.
    assert [AsyncResult(r.id).state for r in results] == ["PENDING", "PENDING"]
    _worker(start_worker, pool, 2)
    _started(broker, key, 2)
    _let_go(broker, key, 2)
    for result in results:
        _own(result, result.get(timeout=20))


def test_a_lane_task_acked_on_receipt_is_started_while_it_runs(
    start_worker: Any, broker: Any
) -> None:
    from django_taskq.broker import keys
    from django_taskq.conf import taskq_settings

    _worker(start_worker, "solo", 2)
    key = "lane-early"
    holder = lane_wait.delay(key)
    _started(broker, key)
    early = lane_early.delay(key)
    _started(broker, key)
    assert AsyncResult(early.id).state == "STARTED"  # track_started, written as it began
    pending = sum(
        broker.xpending(stream, keys.GROUP)["pending"]
        for stream in keys.streams_for([taskq_settings.DEFAULT_QUEUE])
    )
    assert pending == 1  # only the holder's: acks_late=False acked it on receipt
    _let_go(broker, key, 2)
    _own(early, early.get(timeout=20))
    _own(holder, holder.get(timeout=20))


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_inspect_active_lists_every_lane_task(start_worker: Any, broker: Any, pool: str) -> None:
    from django_taskq import control

    _worker(start_worker, pool, 3, "-n", "lane@test")
    key = "lane-active"
    results = [lane_wait.delay(key) for _ in range(3)]
    _started(broker, key, 3)
    [rows] = control.active(destination="lane@test", timeout=15).results().values()
    assert sorted(row["task_id"] for row in rows) == sorted(r.id for r in results)
    assert {row["task"] for row in rows} == {"tests.testapp.tasks.lane_wait"}
    _let_go(broker, key, 3)
    for result in results:
        result.get(timeout=20)
    assert control.active(destination="lane@test", timeout=15).results() == {"lane@test": []}


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_a_plain_task_runs_once_the_lane_is_empty(
    start_worker: Any, broker: Any, pool: str
) -> None:
    _worker(start_worker, pool, 3)
    key = "lane-mixed"
    holder = lane_wait.delay(key)
    _started(broker, key)
    plain = add.delay(1, 2)  # ends the lane: it waits for the holder
    after = lane_wait.delay(key)  # behind the plain task: not beside the holder
    _let_go(broker, key, 1)
    assert plain.get(timeout=20) == 3
    _own(holder, holder.get(timeout=20))
    assert AsyncResult(holder.id).date_done <= AsyncResult(plain.id).date_done
    _started(broker, key)
    _let_go(broker, key, 1)
    _own(after, after.get(timeout=20))
    assert _seen(broker, key) == [1, 1]  # each ran alone
