"""Delivery under faults, end to end: each test is a defect once measured from outside.

Real redis-server, real worker subprocesses. Each test synchronises on an
event (a record in Redis, a log line, a key) with a deadline; none sleeps
before an assertion.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from django_taskq import AsyncResult, chord, states
from django_taskq.broker import keys
from django_taskq.exceptions import ChordError, TimeLimitExceeded, WorkerLostError
from tests.testapp.tasks import add, crash, record, record_slow, sleep_then, wf_count_calls, xsum
from tests.topology import drop_client_connections, stream_entries

pytestmark = pytest.mark.e2e


def _wait_for(predicate: Any, timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.02)


def _list(broker: Any, key: str) -> list[str]:
    return [v.decode() for v in broker.lrange(key, 0, -1)]


def _pending(broker: Any, queue: str = "default") -> int:
    total = 0
    for stream in keys.queue_streams(queue):
        if broker.exists(stream):
            total += sum(int(g["pending"]) for g in broker.xinfo_groups(stream))
    return total


def _consumers(broker: Any) -> list[str]:
    return sorted(k.decode().split(":hb:", 1)[1] for k in broker.scan_iter(keys.heartbeat("*")))


def test_a_finished_result_is_not_held_back_by_the_next_task(
    start_worker: Any, broker: Any
) -> None:
    """Many fast tasks, then a long one: the last fast result and its ack are in Redis at once."""
    start_worker("-P", "solo")
    fast = [add.delay(i, i) for i in range(300)]
    slow = record_slow.delay("slow", "long", 15)
    _wait_for(lambda: _list(broker, "slow") == ["start:long"], what="the long task's start")
    # The long task runs now; everything before it is stored and acked.
    _wait_for(lambda: fast[-1].state == states.SUCCESS, timeout=2, what="the last fast result")
    assert all(r.state == states.SUCCESS for r in fast)
    _wait_for(lambda: _pending(broker) == 1, timeout=2, what="only the long task pending")
    slow.revoke()


def test_a_fetch_whose_reply_was_lost_is_taken_back_after_the_reconnect(
    start_worker: Any, broker: Any
) -> None:
    """Entries Redis delivered to a live consumer whose reply never arrived are run, not stuck."""
    start_worker("-P", "solo")
    assert add.delay(1, 1).get(timeout=10) == 2
    # Its ack follows its result (on Cluster a round trip later): wait for it,
    # so that what is pending below is only what this test reads.
    _wait_for(lambda: _pending(broker) == 0, what="the first task acked")
    [consumer] = _consumers(broker)
    # Add five messages and read them as the worker's consumer in one MULTI,
    # as if the worker's own read had run and its reply had been lost.
    stream = keys.stream("default", 5)
    sent = []
    pipe = broker.pipeline(transaction=True)
    for i in range(5):
        envelope = add.build_envelope((i, 100))
        sent.append(AsyncResult(envelope.id))
        pipe.xadd(stream, {"i": envelope.id, "b": envelope.encode(), "dc": 0})
    pipe.xreadgroup(keys.GROUP, consumer, {stream: ">"}, count=10)
    assert len(stream_entries(pipe.execute()[-1])) == 5
    assert _pending(broker) == 5
    # Drop the worker's connections: it reconnects and asks what it holds.
    drop_client_connections(broker)
    assert [r.get(timeout=15) for r in sent] == [i + 100 for i in range(5)]
    _wait_for(lambda: _pending(broker) == 0, what="nothing pending")


def test_each_recycled_child_has_a_heartbeat_before_its_first_read(
    start_worker: Any, broker: Any
) -> None:
    """A fresh child per task beside other workers' recovery sweeps: every task runs once."""
    env = {"TASKQ_WORKER_HEARTBEAT_TIMEOUT": "2"}
    start_worker("-c", "2", "--max-tasks-per-child", "1", env=env)
    for _ in range(3):  # other live workers, sweeping for lost consumers every 0.5 s
        start_worker("-P", "solo", "-Q", "elsewhere", env=env)
    results = [record.delay("once", f"t{i}") for i in range(12)]
    assert sorted(r.get(timeout=60) for r in results) == sorted(f"t{i}" for i in range(12))
    ran = _list(broker, "once")
    assert sorted(ran) == sorted(f"t{i}" for i in range(12)), ran
    assert all(r.state == states.SUCCESS for r in results)


def test_consumer_names_are_new_at_every_start(start_worker: Any, broker: Any) -> None:
    first = start_worker("-P", "solo")
    assert add.delay(1, 2).get(timeout=10) == 3
    [before] = _consumers(broker)
    first.stop()
    start_worker("-P", "solo")
    assert add.delay(2, 2).get(timeout=10) == 4
    [after] = _consumers(broker)
    assert before != after
    host, pid, token, index = after.rsplit(":", 3)
    assert host.startswith("taskq@") and pid.isdigit() and len(token) == 8 and index == "0"


def test_a_task_that_kills_its_process_is_dead_lettered_after_max_deliveries(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-c", "1", env={"TASKQ_MAX_DELIVERIES": "3"})
    result = crash.delay("crashes")
    with pytest.raises(WorkerLostError, match="delivered 3 times without finishing"):
        result.get(timeout=30)
    assert int(broker.get("crashes")) == 3
    # The result is stored before the message is dead-lettered (on Cluster,
    # one round trip before): wait for the second.
    _wait_for(lambda: broker.xlen(keys.dead("default")) == 1, what="the dead letter")
    [(_, fields)] = broker.xrange(keys.dead("default"))
    assert b"TASKQ_MAX_DELIVERIES=3" in fields[b"reason"]
    assert add.delay(2, 3).get(timeout=10) == 5  # the worker keeps serving
    assert "counts a delivery" in worker.output


def test_a_chord_whose_member_hits_the_hard_time_limit_completes(
    start_worker: Any, broker: Any
) -> None:
    """The time-limit kill ends the member through the settle step: the chord body fails."""
    start_worker("-c", "2")
    workflow = chord([sleep_then.s(0, 1), sleep_then.s(30, 2).set(time_limit=1)], xsum.s())
    result = workflow.apply_async()
    with pytest.raises(ChordError, match="TimeLimitExceeded"):
        result.get(timeout=30)
    member = result.parent.results[1]
    assert member.state == states.FAILURE
    with pytest.raises(TimeLimitExceeded):
        member.get(timeout=1)


def test_a_chord_whose_member_kills_its_worker_completes_after_dead_lettering(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-c", "1", env={"TASKQ_MAX_DELIVERIES": "2"})
    workflow = chord([add.s(1, 1), crash.s("chord-crash")], wf_count_calls.s("collected"))
    result = workflow.apply_async()
    with pytest.raises(ChordError, match="WorkerLostError"):
        result.get(timeout=30)
    assert int(broker.get("chord-crash")) == 2


def test_revoke_leaves_a_finished_result_alone(start_worker: Any) -> None:
    start_worker("-P", "solo")
    done = add.delay(4, 4)
    assert done.get(timeout=10) == 8
    done.revoke()
    assert AsyncResult(done.id).state == states.SUCCESS
    assert AsyncResult(done.id).get(timeout=1) == 8


def test_a_task_revoked_while_it_runs_reports_what_it_did(start_worker: Any, broker: Any) -> None:
    """revoke() without terminate does not stop a running task; its outcome replaces REVOKED."""
    start_worker("-P", "solo")
    result = record_slow.delay("revoked-running", "x", 1)
    _wait_for(lambda: _list(broker, "revoked-running") == ["start:x"])
    result.revoke()
    assert AsyncResult(result.id).state == states.REVOKED
    _wait_for(lambda: AsyncResult(result.id).state == states.SUCCESS, what="the task's own outcome")


def test_a_worker_started_before_redis_waits_for_it(
    start_worker: Any, redis_server: Any, broker: Any
) -> None:
    redis_server.stop()
    worker = start_worker("-P", "solo", wait_ready=False)
    worker.wait_for_line("cannot reach Redis")
    assert worker.process is not None and worker.process.poll() is None
    redis_server.start()
    worker.wait_for_line(" ready", timeout=20)
    from django_taskq.broker import connection

    connection.reset()
    assert add.delay(5, 5).get(timeout=15) == 10
    assert "Traceback" not in worker.output


def test_a_worker_registers_again_after_redis_lost_its_data(
    start_worker: Any, redis_server: Any
) -> None:
    from django_taskq.broker import connection
    from django_taskq.control import inspect

    start_worker("-P", "solo", env={"TASKQ_WORKER_HEARTBEAT_TIMEOUT": "3"})
    assert len(inspect()["workers"]) == 1
    redis_server.restart()  # no persistence: every key is gone
    connection.reset()
    _wait_for(lambda: len(inspect()["workers"]) == 1, what="the worker registered again")
    assert add.delay(3, 4).get(timeout=15) == 7


def test_malformed_entries_are_dead_lettered_naming_the_field(
    start_worker: Any, broker: Any
) -> None:
    """Entries that used to crash-loop a worker: each is dead-lettered, the worker lives on."""
    worker = start_worker("-c", "1")
    assert add.delay(1, 1).get(timeout=10) == 2
    children = worker.children()
    good = {"id": "x", "task": "tests.testapp.tasks.add", "args": [1, 2]}
    stream = keys.stream("default", 5)

    def entry(task_id: Any, dc: Any = 0, **body: Any) -> dict[str, Any]:
        return {"i": task_id, "b": json.dumps({**good, "id": task_id, **body}), "dc": dc}

    def tagged(tag: str, **payload: Any) -> list[dict[str, Any]]:
        return [{"__taskq__": tag, **payload}]

    bad = {
        "dc-float": (entry("a", dc="1.5"), "field 'dc'"),
        "dc-word": (entry("b", dc="x"), "field 'dc'"),
        "i-binary": ({"i": b"\xff\xfe", "b": json.dumps(good), "dc": 0}, "field 'i'"),
        "deep": ({"i": "c", "b": "[" * 100_000 + "]" * 100_000, "dc": 0}, "nested too deeply"),
        "expires": (entry("d", expires="x"), "'expires'"),
        "limit": (entry("e", time_limit="5"), "'time_limit'"),
        "soft": (entry("f", soft_time_limit=-1), "'soft_time_limit'"),
        "chord": (entry("g", chord=5), "'chord'"),
        "bytes": (entry("h", args=tagged("bytes", v=1)), "tagged value 'bytes'"),
        "set": (entry("j", args=tagged("set", v=[[1]])), "tagged value 'set'"),
        "no-v": (entry("k", args=tagged("uuid")), "has no 'v'"),
        "extra": ({**entry("l"), "zz": 1}, "unknown field"),
        "mismatch": ({**entry("m"), "i": "other"}, "does not match"),
    }
    for fields, _ in bad.values():
        broker.xadd(stream, fields)
    assert add.delay(20, 22).get(timeout=20) == 42
    _wait_for(
        lambda: broker.xlen(keys.dead("default")) == len(bad), what="every entry dead-lettered"
    )
    reasons = [f[b"reason"].decode() for _, f in broker.xrange(keys.dead("default"))]
    for name, (_, fragment) in bad.items():
        assert any(fragment in r for r in reasons), (name, fragment, reasons)
    assert worker.children() == children, "no child died"
    assert "died" not in worker.output
    _wait_for(lambda: _pending(broker) == 0, what="every message acked")
    assert AsyncResult("d").state == states.FAILURE  # the id it named says why
