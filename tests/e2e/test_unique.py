"""Unique tasks end to end: one send stands while it is queued, delayed or running.

A real worker subprocess and a real Redis (a Redis Cluster under
TASKQ_TEST_TOPOLOGY=cluster): the key is taken with the publish and given
up when the task ends for good, never on a retry.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from redis.crc import key_slot

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.exceptions import Reject, TimeLimitExceeded
from django_taskq.unique import default_key
from tests.testapp.tasks import (
    add,
    unique_fail,
    unique_gated,
    unique_killed,
    unique_rejected,
    unique_retried,
    unique_retried_with_headers,
)

pytestmark = pytest.mark.e2e


def _wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def _list(broker: Any, key: str) -> list[str]:
    return [v.decode() for v in broker.lrange(key, 0, -1)]


def _key(task: Any, *args: Any, queue: str = "default") -> str:
    return keys.unique(queue, default_key(task.name, list(args), {}, task._run_signature))


def _queued(broker: Any, queue: str = "default") -> int:
    """Messages in the queue's streams and delayed set (no worker runs in these tests)."""
    ready = sum(broker.xlen(stream) for stream in keys.streams_for([queue]))
    return ready + int(broker.zcard(keys.delayed(queue)))


def test_concurrent_sends_publish_exactly_one(broker: Any) -> None:
    barrier = threading.Barrier(8)
    found: list[Any] = []

    def send() -> None:
        barrier.wait()
        found.append(unique_gated.delay("uq-threads", "x"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(found) == 8
    assert len({r.id for r in found}) == 1
    assert sum(1 for r in found if not r.existing) == 1
    assert _queued(broker) == 1
    assert broker.get(_key(unique_gated, "uq-threads", "x")).decode() == found[0].id


def test_the_key_is_per_arguments_and_per_queue_and_in_the_queues_slot(broker: Any) -> None:
    first = unique_gated.delay("uq-args", 1)
    assert unique_gated.delay("uq-args", 2).id != first.id
    assert unique_gated.apply_async(("uq-args", 1), queue="other").id != first.id
    assert unique_gated.apply_async(kwargs={"value": 1, "key": "uq-args"}).id == first.id
    assert unique_gated.delay("uq-args", 1, "").id == first.id  # the default filled in
    key = _key(unique_gated, "uq-args", 1)
    assert key_slot(key.encode()) == key_slot(keys.stream("default", 5).encode())
    # With the task's unique_for of 60 s, and nothing more.
    assert 55_000 < broker.pttl(key) <= 60_000


def test_explicit_unique_key_on_a_plain_task(broker: Any) -> None:
    first = add.apply_async((1, 2), unique_key="sum", unique_for=10)
    second = add.apply_async((5, 6), unique_key="sum", unique_for=10)
    assert (second.id, second.existing, first.existing) == (first.id, True, False)
    assert add.apply_async((1, 2), unique_key="other", unique_for=10).id != first.id
    assert add.delay(1, 2).id != first.id  # no option: not unique
    assert _queued(broker) == 3  # the first, the other key's, the plain one


def test_send_task_by_name_is_unique_too(broker: Any) -> None:
    from django_taskq import send_task

    first = send_task("tests.testapp.tasks.add", (1, 2), unique_key="by-name", unique_for=10)
    second = send_task("some.task.only.workers.know", (), unique_key="by-name", unique_for=10)
    assert (second.id, second.existing) == (first.id, True)
    assert _queued(broker) == 1


def test_a_delayed_task_holds_its_key_past_unique_for(broker: Any) -> None:
    first = unique_gated.apply_async(("uq-delayed", "x"), countdown=120)
    again = unique_gated.delay("uq-delayed", "x")
    assert (again.id, again.existing) == (first.id, True)
    assert _queued(broker) == 1
    # The key covers the wait, then unique_for (60 s).
    assert broker.pttl(_key(unique_gated, "uq-delayed", "x")) > 170_000


def test_a_revoked_task_gives_its_key_up_at_once(broker: Any) -> None:
    first = unique_gated.apply_async(("uq-revoked", "x"), countdown=120)
    first.revoke()
    second = unique_gated.delay("uq-revoked", "x")
    assert second.id != first.id and not second.existing
    assert broker.get(_key(unique_gated, "uq-revoked", "x")).decode() == second.id


def test_expires_bounds_the_key(broker: Any) -> None:
    unique_gated.apply_async(("uq-expires", "x"), expires=5)
    assert broker.pttl(_key(unique_gated, "uq-expires", "x")) <= 5_000


def test_queued_and_running_then_released_at_success(start_worker: Any, broker: Any) -> None:
    first = unique_gated.delay("uq-run", "x", "uq-run-gate")
    assert unique_gated.delay("uq-run", "x", "uq-run-gate").id == first.id  # queued
    start_worker("-c", "1")
    _wait_for(lambda: _list(broker, "uq-run") == ["start:x"])
    running = unique_gated.delay("uq-run", "x", "uq-run-gate")
    assert (running.id, running.existing) == (first.id, True)
    broker.rpush("uq-run-gate", "go")
    assert first.get(timeout=15) == "x"
    key = _key(unique_gated, "uq-run", "x", "uq-run-gate")
    _wait_for(lambda: not broker.exists(key))  # given up in the flush that acks it
    second = unique_gated.delay("uq-run", "x", "uq-run-gate")
    assert second.id != first.id and not second.existing
    broker.rpush("uq-run-gate", "go")
    assert second.get(timeout=15) == "x"
    assert _list(broker, "uq-run") == ["start:x", "end:x", "start:x", "end:x"]


def test_released_at_failure_and_at_dead_letter(start_worker: Any, broker: Any) -> None:
    start_worker("-c", "1")
    failed = unique_fail.delay("uq-fail")
    with pytest.raises(ValueError):
        failed.get(timeout=15)
    _wait_for(lambda: not broker.exists(_key(unique_fail, "uq-fail")))
    assert unique_fail.delay("uq-fail").id != failed.id

    rejected = unique_rejected.delay("uq-dead")
    with pytest.raises(Reject):
        rejected.get(timeout=15)
    _wait_for(lambda: broker.xlen(keys.dead("default")) == 1)
    _wait_for(lambda: not broker.exists(_key(unique_rejected, "uq-dead")))
    assert unique_rejected.delay("uq-dead").id != rejected.id


def test_released_after_a_time_limit_kill(start_worker: Any, broker: Any) -> None:
    start_worker("-c", "1")
    killed = unique_killed.delay("uq-limit")
    _wait_for(lambda: _list(broker, "uq-limit") == ["start"])
    assert unique_killed.delay("uq-limit").id == killed.id  # running
    with pytest.raises(TimeLimitExceeded):
        killed.get(timeout=20)
    _wait_for(lambda: not broker.exists(_key(unique_killed, "uq-limit")))
    assert unique_killed.delay("uq-limit").id != killed.id


def test_released_when_a_revoked_task_is_dropped(start_worker: Any, broker: Any) -> None:
    first = unique_gated.delay("uq-drop", "x")
    first.revoke()
    start_worker("-c", "1")
    _wait_for(lambda: first.state == states.REVOKED)
    _wait_for(lambda: not broker.exists(_key(unique_gated, "uq-drop", "x")))
    assert _list(broker, "uq-drop") == []


def test_a_retry_keeps_the_key(start_worker: Any, broker: Any) -> None:
    start_worker("-c", "1")
    first = unique_retried.delay("uq-retry")
    _wait_for(lambda: first.state == states.RETRY)
    again = unique_retried.delay("uq-retry")
    assert (again.id, again.existing) == (first.id, True)
    assert first.get(timeout=15) == 2
    _wait_for(lambda: not broker.exists(_key(unique_retried, "uq-retry")))
    assert unique_retried.delay("uq-retry").id != first.id


def test_a_retry_with_headers_keeps_the_key_and_gives_it_up_at_the_end(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-c", "1")
    first = unique_retried_with_headers.delay("uq-retry-h")
    _wait_for(lambda: first.state == states.RETRY)
    again = unique_retried_with_headers.delay("uq-retry-h")
    assert (again.id, again.existing) == (first.id, True)
    # The retry's headers are added to the message's: its own and the unique key's.
    assert first.get(timeout=15) == [2, "second", True]
    _wait_for(lambda: not broker.exists(_key(unique_retried_with_headers, "uq-retry-h")))
    later = unique_retried_with_headers.delay("uq-retry-h")
    assert (later.id == first.id, later.existing) == (False, False)


def test_kill_9_of_the_worker_keeps_the_key_to_the_redelivered_run(
    start_worker: Any, broker: Any
) -> None:
    first_worker = start_worker("-c", "1")
    first = unique_gated.delay("uq-k9", "x", "uq-k9-gate")
    _wait_for(lambda: _list(broker, "uq-k9") == ["start:x"])
    first_worker.kill()  # parent and children, as a machine crash would
    while_dead = unique_gated.delay("uq-k9", "x", "uq-k9-gate")
    assert (while_dead.id, while_dead.existing) == (first.id, True)
    start_worker("-c", "1")  # claims the message back once the dead one's heartbeat is gone
    _wait_for(lambda: _list(broker, "uq-k9") == ["start:x", "start:x"], timeout=30)
    assert unique_gated.delay("uq-k9", "x", "uq-k9-gate").id == first.id  # running again
    broker.rpush("uq-k9-gate", "go")
    assert first.get(timeout=15) == "x"
    _wait_for(lambda: not broker.exists(_key(unique_gated, "uq-k9", "x", "uq-k9-gate")))
    assert unique_gated.delay("uq-k9", "x", "uq-k9-gate").id != first.id
