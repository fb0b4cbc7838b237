"""``taskq_control`` and its Python API, carried out by real worker processes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management.base import CommandError

from django_taskq import AsyncResult, control
from django_taskq.broker import keys
from django_taskq.exceptions import TimeLimitExceeded
from django_taskq.monitor.workers import workers
from tests.ops.helpers import (
    REPLY_TIMEOUT,
    command,
    command_json,
    manage,
    only_reply,
    started,
    wait_until,
)
from tests.testapp.tasks import add, gated, pid


def _state(hostname: str) -> Any:
    return next(w for w in workers() if w.hostname == hostname)


def test_pool_grow_and_shrink_show_in_the_worker_state(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "1", "-n", "pool@test")
    grown = only_reply(command_json("taskq_control", "pool_grow", "2", "--timeout", REPLY_TIMEOUT))
    assert grown["result"]["concurrency"] == 3
    # The reply is sent after the description was rewritten: no waiting.
    state = _state("pool@test")
    assert state.concurrency == 3
    assert sorted(grown["result"]["processes"]) == sorted(worker.children())
    assert len(worker.children()) == 3
    # The new children consume: three tasks run at once, each in its own process.
    blocked = [gated.delay(f"p{i}") for i in range(3)]
    pids = {started(broker, f"p{i}") for i in range(3)}
    assert len(pids) == 3 and pids == set(worker.children())
    for i in range(3):
        broker.rpush(f"p{i}", "go")
    for result in blocked:
        result.get(timeout=15)

    shrunk = control.pool_shrink(2, destination="pool@test", timeout=15)
    assert shrunk.ok and shrunk.results()["pool@test"]["concurrency"] == 1
    assert _state("pool@test").concurrency == 1
    wait_until(
        lambda: sum("stopped (pool_shrink)" in line for line in worker.lines) == 2,
        "two children to log that they stopped",
    )
    stats = control.stats(timeout=15).results()["pool@test"]
    assert len(stats["processes"]) == 1 and stats["processes"] == worker.children()
    assert add.delay(2, 3).get(timeout=15) == 5  # the one left consumes

    # It never shrinks to nothing, and says why.
    done = manage("taskq_control", "pool_shrink", "1", "--json", "--timeout", REPLY_TIMEOUT)
    assert done.returncode == 1
    [reply] = json.loads(done.stdout)["replies"].values()
    assert not reply["ok"] and "keeps at least one" in reply["error"]


def test_pool_changes_need_the_prefork_pool(start_worker: Any) -> None:
    start_worker("-P", "solo", "-n", "solo@test")
    replies = control.pool_grow(1, timeout=15)
    [reply] = replies.replies
    assert not reply.ok and "solo pool" in reply.error  # type: ignore[operator]
    with pytest.raises(CommandError, match="error from solo@test"):
        command("taskq_control", "pool_grow", "--timeout", REPLY_TIMEOUT)


def test_rate_limit_takes_effect_in_a_running_prefork_child(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "1", "-n", "rate@test")
    [child] = worker.children()
    assert add.delay(1, 1).get(timeout=15) == 2  # the child runs, with no limit
    data = command_json(
        "taskq_control", "rate_limit", "tests.testapp.tasks.add", "1/h", "--timeout", "15"
    )
    assert only_reply(data)["result"]["rate_limit"] == "1/h"
    first, second = add.delay(2, 2), add.delay(3, 3)
    assert first.get(timeout=15) == 4  # the bucket's one token
    # The second waits for the next token (an hour away) in the delayed set.
    wait_until(lambda: broker.zcard(keys.delayed("default")) == 1, "the second to be delayed")
    assert second.state == "PENDING"
    assert worker.children() == [child]  # the same child, told without restarting it
    # Back to the declared limit (none): the next call runs at once.
    replies = control.rate_limit("tests.testapp.tasks.add", None, reset=True, timeout=15)
    assert replies.results()["rate@test"]["rate_limit"] is None
    assert add.delay(4, 4).get(timeout=15) == 8


def test_a_rate_limit_holds_for_workers_started_later(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo", "-n", "first@test")
    control.rate_limit("tests.testapp.tasks.add", "1/h", timeout=15)
    later = start_worker("-P", "prefork", "-c", "1", "-n", "later@test", "-Q", "later")
    registered = control.registered(destination="later@test", timeout=15).results()
    [row] = [r for r in registered["later@test"] if r["name"] == "tests.testapp.tasks.add"]
    assert row["rate_limit"] == "1/h"
    assert add.apply_async((1, 1), queue="later").get(timeout=15) == 2
    add.apply_async((2, 2), queue="later")
    wait_until(lambda: broker.zcard(keys.delayed("later")) == 1, "the later worker to delay it")
    assert later.process.poll() is None  # type: ignore[union-attr]
    # 0 means no limit at all (not the declared one).
    assert control.rate_limit("tests.testapp.tasks.limited", 0, timeout=15).ok
    rows = control.registered(destination="later@test", timeout=15).results()["later@test"]
    assert next(r for r in rows if r["name"] == "tests.testapp.tasks.limited")["rate_limit"] is None


def test_time_limit_takes_effect_in_a_prefork_child(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "prefork", "-c", "1", "-n", "time@test")
    out, _ = command(
        "taskq_control", "time_limit", "tests.testapp.tasks.gated", "none", "1", "--timeout", "15"
    )
    assert "soft_time_limit: null" in out and "time_limit: 1.0" in out
    result = gated.delay("never-released")
    with pytest.raises(TimeLimitExceeded, match=r"hard time limit \(1s\) exceeded"):
        result.get(timeout=20)
    worker.wait_for_line("killed: time_limit 1")
    control.time_limit("tests.testapp.tasks.gated", reset=True, timeout=15)
    released = gated.delay("free")
    started(broker, "free")
    broker.rpush("free", "go")
    assert released.get(timeout=15) in worker.children()


def test_shutdown_ends_the_named_worker_only(start_worker: Any) -> None:
    stopping = start_worker("-P", "prefork", "-c", "1", "-n", "stop@test")
    staying = start_worker("-P", "solo", "-n", "stay@test")
    done = manage(
        "taskq_control", "shutdown", "-d", "stop@test", "--json", "--timeout", REPLY_TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert only_reply(json.loads(done.stdout))["hostname"] == "stop@test"
    assert stopping.wait(30) == 0
    stopping.wait_for_line("warm shutdown requested by remote control")
    assert staying.process.poll() is None  # type: ignore[union-attr]
    assert [w.hostname for w in workers()] == ["stay@test"]
    assert control.ping(timeout=15).results() == {"stay@test": "pong"}


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_add_and_cancel_consumer(start_worker: Any, broker: Any, pool: str) -> None:
    start_worker("-P", pool, "-c", "1", "-n", "q@test")
    data = command_json("taskq_control", "add_consumer", "extra", "--timeout", REPLY_TIMEOUT)
    assert only_reply(data)["result"]["queues"] == ["default", "extra"]
    assert _state("q@test").queues == ["default", "extra"]
    assert pid.apply_async(queue="extra").get(timeout=15) > 0
    assert "extra" in control.known_queues()

    replies = control.cancel_consumer("default", timeout=15)
    assert replies.results()["q@test"]["queues"] == ["extra"]
    assert _state("q@test").queues == ["extra"]
    # Sent first, the default one would be taken first if default were still consumed.
    ignored = add.delay(1, 1)
    assert add.apply_async((2, 2), queue="extra").get(timeout=15) == 4
    assert AsyncResult(ignored.id).state == "PENDING"
    assert control.queue_stats(broker, "default")["waiting"] == 1

    refused = control.cancel_consumer("extra", timeout=15)
    assert "only queue" in refused.replies[0].error  # type: ignore[operator]
    unchanged = control.add_consumer("extra", timeout=15)
    assert unchanged.results()["q@test"] == {"queues": ["extra"], "changed": False}


def test_queue_changes_in_quick_succession_reach_every_new_child(start_worker: Any) -> None:
    """Each add_consumer restarts the prefork children; the next one comes while they start.

    A child signalled in its first milliseconds, before its own SIGTERM
    handler was in, used to run the handler it inherited from the worker
    and go on with its old queue list (so the last queue was never read).
    """
    start_worker("-P", "prefork", "-c", "2", "-n", "quick@test")
    added = [f"quick{i}" for i in range(8)]
    for queue in added:
        control.add_consumer(queue, timeout=15)
    results = [add.apply_async((i, i), queue=queue) for i, queue in enumerate(added)]
    assert [r.get(timeout=20) for r in results] == [2 * i for i in range(8)]


def test_bad_input_is_refused_before_anything_is_sent(start_worker: Any) -> None:
    start_worker("-P", "solo", "-n", "bad@test")
    cases = [
        (
            ["rate_limit", "tests.testapp.tasks.ad", "1/s"],
            "no worker has registered a task "
            "named 'tests.testapp.tasks.ad'.*Did you mean 'tests.testapp.tasks.add'",
        ),
        (["rate_limit", "tests.testapp.tasks.add", "fast"], "rate_limit='fast' is not valid"),
        (["rate_limit", "tests.testapp.tasks.add"], "needs a RATE"),
        (["rate_limit", "tests.testapp.tasks.add", "1/s", "-d", "bad@test"], "every worker"),
        (["time_limit", "tests.testapp.tasks.add", "5", "2"], "must not exceed the hard one"),
        (["time_limit", "tests.testapp.tasks.add", "-3", "5"], "must be positive"),
        (["time_limit", "tests.testapp.tasks.add", "soon", "5"], "SOFT must be a number"),
        (["add_consumer", "two words"], "queue must be a name"),
        (["pool_grow", "0"], "n must be a whole number of 1 or more"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError, match=message):
            command("taskq_control", *args)
    done = manage("taskq_control", "rate_limit", "nope.task", "1/s")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("CommandError: no worker has registered a task named 'nope.task'")
