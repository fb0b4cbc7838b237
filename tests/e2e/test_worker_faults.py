"""Faults end to end: time limits, crashes, shutdowns, bad messages, Redis restarts."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.publish import publish
from django_taskq.exceptions import (
    BrokerUnavailable,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
    WorkerLostError,
)
from django_taskq.messages import Envelope
from django_taskq.testing import RedisServer
from tests.testapp.tasks import add, crash, hard_limited, pid, record, record_slow, soft_limited

pytestmark = pytest.mark.e2e


def _list(broker: Any, key: str) -> list[str]:
    return [v.decode() for v in broker.lrange(key, 0, -1)]


def _wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_soft_time_limit_raises_inside_the_task(start_worker: Any, broker: Any) -> None:
    start_worker("-c", "1")
    result = soft_limited.delay("soft-cleanup")
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(timeout=10)
    assert broker.get("soft-cleanup") == b"cleaned up"


def test_soft_time_limit_in_the_solo_pool(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    with pytest.raises(SoftTimeLimitExceeded):
        soft_limited.delay("soft-solo").get(timeout=10)
    assert broker.get("soft-solo") == b"cleaned up"


def test_hard_time_limit_kills_the_child_and_a_new_one_runs(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-c", "1")
    first_child = pid.delay().get(timeout=10)
    result = hard_limited.delay()
    with pytest.raises(TimeLimitExceeded, match="hard time limit"):
        result.get(timeout=15)
    assert result.state == states.FAILURE
    second_child = pid.delay().get(timeout=15)
    assert second_child != first_child
    assert worker.process.poll() is None  # type: ignore[union-attr]
    # The killed task's message was acked, not redelivered.
    time.sleep(0.5)
    assert broker.xlen(keys.stream("default", 5)) == 0


def test_worker_wide_time_limit_option(start_worker: Any) -> None:
    start_worker("-c", "1", "--time-limit", "1")
    from tests.testapp.tasks import sleep_then

    with pytest.raises(TimeLimitExceeded):
        sleep_then.delay(30).get(timeout=15)


def test_kill_9_of_a_child_redelivers_its_task(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-c", "1")
    result = record_slow.delay("k9child", "x", 1.0)
    _wait_for(lambda: _list(broker, "k9child") == ["start:x"])
    [child] = worker.children()
    os.kill(child, signal.SIGKILL)
    assert result.get(timeout=20) == "x"
    assert _list(broker, "k9child") == ["start:x", "start:x", "end:x"]
    assert "died" in worker.wait_for_line("died")


def test_kill_9_of_the_whole_worker_recovers_on_another(start_worker: Any, broker: Any) -> None:
    first = start_worker("-c", "1")
    result = record_slow.delay("k9all", "x", 1.0)
    _wait_for(lambda: _list(broker, "k9all") == ["start:x"])
    first.kill()  # parent and children, as a machine crash would
    killed_at = time.monotonic()
    start_worker("-c", "1")
    assert result.get(timeout=30) == "x"
    took = time.monotonic() - killed_at
    # Tests run with TASKQ_WORKER_HEARTBEAT_TIMEOUT=6: recovery follows liveness.
    assert took < 6 + 6, took
    assert _list(broker, "k9all")[-1] == "end:x"


def test_long_task_on_a_live_worker_is_never_redelivered(start_worker: Any, broker: Any) -> None:
    start_worker("-c", "1")
    start_worker("-c", "1")
    # Runs for twice the heartbeat timeout: a visibility timeout would redeliver it.
    result = record_slow.delay("long", "x", 13)
    assert result.get(timeout=30) == "x"
    assert _list(broker, "long") == ["start:x", "end:x"]


def test_message_that_keeps_crashing_its_worker_is_dead_lettered(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-c", "1")
    result = crash.delay("crashes")
    with pytest.raises(WorkerLostError, match="delivered 3 times"):
        result.get(timeout=30)
    assert int(broker.get("crashes")) == 3  # TASKQ_MAX_DELIVERIES=3 in tests
    # The result is stored before the dead letter (on Cluster, a round trip before).
    _wait_for(lambda: broker.xlen(keys.dead("default")) == 1)
    [(_, fields)] = broker.xrange(keys.dead("default"))
    assert fields[b"i"].decode() == result.id
    assert b"TASKQ_MAX_DELIVERIES" in fields[b"reason"]
    assert add.delay(1, 1).get(timeout=15) == 2  # the worker keeps going
    assert worker.process.poll() is None  # type: ignore[union-attr]


def test_unregistered_task_fails_and_is_dead_lettered(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "solo")
    envelope = Envelope(id="ghost-1", task="nowhere.ghost", args=[1])
    publish(envelope)
    from django_taskq import AsyncResult

    with pytest.raises(Exception, match="task nowhere.ghost is not registered on worker taskq@"):
        AsyncResult("ghost-1").get(timeout=10)
    _wait_for(lambda: broker.xlen(keys.dead("default")) == 1)  # stored after the result
    [(_, fields)] = broker.xrange(keys.dead("default"))
    assert b"not registered" in fields[b"reason"]
    assert add.delay(2, 2).get(timeout=10) == 4
    assert "not registered" in worker.output


def test_malformed_message_is_dead_lettered_and_worker_goes_on(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-P", "solo")
    broker.xadd(keys.stream("default", 5), {"i": "bad-1", "b": "{not json", "dc": 0})
    broker.xadd(keys.stream("default", 5), {"i": "bad-2", "b": json.dumps({"task": "x"}), "dc": 0})
    assert add.delay(3, 3).get(timeout=10) == 6
    _wait_for(lambda: broker.xlen(keys.dead("default")) == 2)  # stored after the result
    reasons = [f[b"reason"].decode() for _, f in broker.xrange(keys.dead("default"))]
    assert any("not valid JSON" in r for r in reasons), reasons
    assert any("field 'id' must be a non-empty string" in r for r in reasons), reasons


def test_warm_shutdown_finishes_running_and_hands_back_the_rest(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-P", "solo")
    slow = record_slow.delay("warm", "slow", 1.0)
    waiting = [record.delay("warm", f"w{i}") for i in range(3)]
    _wait_for(lambda: "start:slow" in _list(broker, "warm"))
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert slow.get(timeout=1) == "slow"
    ran = _list(broker, "warm")
    assert ran[:2] == ["start:slow", "end:slow"]
    # Whatever did not run is back in the stream, not stuck in a pending list.
    not_run = [r for r in waiting if r.state == states.PENDING]
    groups = broker.xinfo_groups(keys.stream("default", 5))
    assert sum(g["pending"] for g in groups) == 0
    assert broker.xlen(keys.stream("default", 5)) == len(not_run)
    start_worker("-P", "solo")
    assert [r.get(timeout=10) for r in waiting] == ["w0", "w1", "w2"]


def test_cold_shutdown_hands_back_the_running_task(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-c", "1")
    result = record_slow.delay("cold", "x", 3)
    _wait_for(lambda: _list(broker, "cold") == ["start:x"])
    worker.signal(signal.SIGTERM)
    time.sleep(0.2)
    worker.signal(signal.SIGTERM)
    worker.wait(15)
    assert result.state == states.PENDING
    start_worker("-c", "1")
    assert result.get(timeout=15) == "x"


def test_redis_restart_while_worker_runs(start_worker: Any, redis_server: RedisServer) -> None:
    worker = start_worker("-c", "1")
    assert add.delay(1, 1).get(timeout=10) == 2
    redis_server.restart(down_for=1.5)  # no persistence: streams and groups are gone
    from django_taskq.broker import connection

    connection.reset()
    deadline = time.monotonic() + 30
    while True:
        try:
            assert add.delay(2, 3).get(timeout=5) == 5
            break
        except Exception:
            if time.monotonic() > deadline:
                raise AssertionError("worker did not resume:\n" + worker.output) from None
    assert "lost Redis" in worker.output


def test_delay_while_redis_is_down_raises_broker_unavailable(redis_server: RedisServer) -> None:
    redis_server.stop()
    try:
        from django_taskq.broker import connection

        connection.reset()
        with pytest.raises(BrokerUnavailable, match="unreachable after 3 attempts"):
            add.delay(1, 1)
    finally:
        redis_server.start()


def test_max_tasks_per_child_recycles_the_child(start_worker: Any) -> None:
    start_worker("-c", "1", "--max-tasks-per-child", "2")
    pids = [pid.delay().get(timeout=10) for _ in range(4)]
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[0] != pids[2], pids


def test_threads_pool_runs_tasks_concurrently(start_worker: Any) -> None:
    start_worker("-P", "threads", "-c", "4")
    from tests.testapp.tasks import sleep_then

    started = time.monotonic()
    results = [sleep_then.delay(1, i) for i in range(4)]
    assert [r.get(timeout=10) for r in results] == [0, 1, 2, 3]
    assert time.monotonic() - started < 3.5


def test_a_threads_pool_larger_than_redis_pys_default_pool_keeps_its_connections(
    start_worker: Any,
) -> None:
    """120 threads: each holds a connection in its blocking read, beside the flusher,
    heartbeat and housekeeping. redis-py 8 caps a pool at 100 connections unless told
    otherwise, and such a worker lost Redis ("Too many connections") again and again."""
    from tests.testapp.tasks import sleep_then

    worker = start_worker("-P", "threads", "-c", "120")
    results = [sleep_then.delay(0.02, i) for i in range(600)]
    assert [r.get(timeout=60) for r in results] == list(range(600))
    assert "Too many connections" not in worker.output
    assert "lost Redis" not in worker.output


def test_banner_lists_queues_pool_and_tasks_without_password(start_worker: Any) -> None:
    worker = start_worker("-P", "solo", "-Q", "a,b")
    out = worker.output
    assert "queues:      a, b" in out
    assert "pool:        solo, concurrency 1" in out
    assert "tests.testapp.tasks.add" in out
    scheme = os.environ["TASKQ_BROKER_URL"].split("://")[0]  # redis+cluster on a Cluster
    assert f"broker:      {scheme}://127.0.0.1:" in out


def test_tls_broker_end_to_end(start_worker: Any) -> None:
    """rediss:// with certificate verification, for the caller and the worker."""
    from django.test import override_settings

    from django_taskq.broker import connection

    server = RedisServer(tls=True).start()
    try:
        with override_settings(TASKQ_BROKER_URL=server.url):
            start_worker("-P", "solo", env={"TASKQ_BROKER_URL": server.url})
            assert add.delay(20, 22).get(timeout=10) == 42
            assert connection.get_broker().connection_pool.connection_kwargs["ssl_ca_certs"]
    finally:
        server.close()


def test_max_memory_per_child_recycles_the_child(start_worker: Any) -> None:
    from tests.testapp.tasks import hog

    start_worker("-c", "1", "--max-memory-per-child", "200M")
    small = hog.delay(1).get(timeout=10)
    assert pid.delay().get(timeout=10) == small  # under the limit: same child
    big = hog.delay(300).get(timeout=10)
    assert big == small
    assert pid.delay().get(timeout=15) != big  # over the limit: replaced


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_sys_exit_in_a_task_is_its_failure_and_runs_once(
    start_worker: Any, broker: Any, pool: str
) -> None:
    """sys.exit() in a task fails that task; it neither loops nor ends the worker."""
    from django_taskq.exceptions import TaskError
    from tests.testapp.tasks import exits

    worker = start_worker("-P", pool, "-c", "1")
    result = exits.delay("exits")
    with pytest.raises(TaskError, match="SystemExit"):
        result.get(timeout=20)
    assert result.state == states.FAILURE
    assert add.delay(2, 2).get(timeout=10) == 4
    assert int(broker.get("exits")) == 1
    assert "died" not in worker.output
