"""revoke(terminate=True, signal=...) in every pool, against a real worker.

The prefork pool sends the signal asked for to the child running the task;
SIGTERM and SIGINT raise Terminated in the task (its cleanup runs, the child
lives on); a child that does not end within the grace is killed; other
signals are sent as they are. The solo and threads pools raise Terminated in
the thread running the task. Every way, the task ends REVOKED and the worker
goes on. Nothing is timed: each test waits for the task's start (BLPOP).
"""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq.exceptions import TaskRevokedError
from django_taskq.result import AsyncResult
from tests.ops.helpers import wait_until
from tests.testapp.tasks import add, deaf, gated, interruptible

pytestmark = pytest.mark.e2e


def _started(broker: Any, key: str) -> int:
    found = broker.blpop([f"{key}:started"], timeout=20)
    assert found is not None, "the task never started"
    return int(found[1])


def _terminated(result: Any, signame: str) -> None:
    """get() raises at once (revoke() wrote a provisional REVOKED); then the worker's own."""
    with pytest.raises(TaskRevokedError):
        result.get(timeout=15)
    wait_until(
        # A new AsyncResult: the first keeps the final state it read.
        lambda: (
            f"terminated by revoke(terminate=True) with {signame}"
            in str(AsyncResult(result.id).result)
        ),
        f"the worker's REVOKED record naming {signame}",
    )


def _list(broker: Any, key: str) -> list[str]:
    return [v.decode() for v in broker.lrange(key, 0, -1)]


@pytest.mark.parametrize(
    "pool", [["-P", "solo"], ["-P", "threads", "-c", "2"]], ids=["solo", "threads"]
)
def test_in_process_pools_raise_terminated_in_the_task_s_thread(
    start_worker: Any, broker: Any, pool: list[str]
) -> None:
    worker = start_worker(*pool)
    result = interruptible.delay("term-inproc", 60)
    _started(broker, "term-inproc")
    result.revoke(terminate=True, signal="SIGTERM")
    _terminated(result, "SIGTERM")
    # Its finally ran; its `except Exception` did not swallow the termination.
    assert _list(broker, "term-inproc") == ["cleanup"]
    # The same worker goes on (nothing restarted), and a later task is not touched.
    assert add.delay(2, 2).get(timeout=15) == 4, worker.output
    later = gated.delay("term-inproc-later")
    _started(broker, "term-inproc-later")
    broker.rpush("term-inproc-later", "go")
    assert later.get(timeout=15) == worker.process.pid


def test_terminating_a_task_that_is_not_running_touches_nothing(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-P", "solo")
    running = gated.delay("term-other")
    _started(broker, "term-other")
    add.delay(1, 1).revoke(terminate=True, signal="SIGTERM")  # queued, not running
    broker.rpush("term-other", "go")
    assert isinstance(running.get(timeout=15), int)


def test_prefork_sigterm_raises_in_the_task_and_the_child_lives_on(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-c", "1")
    result = interruptible.delay("term-fork", 60)
    child = _started(broker, "term-fork")
    result.revoke(terminate=True, signal="SIGTERM")
    _terminated(result, "SIGTERM")
    assert _list(broker, "term-fork") == ["cleanup"]
    after = gated.delay("term-fork-after")
    assert _started(broker, "term-fork-after") == child  # the same child, not a new one
    broker.rpush("term-fork-after", "go")
    assert after.get(timeout=15) == child


def test_prefork_kills_a_child_that_outlives_the_grace(start_worker: Any, broker: Any) -> None:
    start_worker("-c", "1", env={"TASKQ_WORKER_TERMINATE_GRACE": "1"})
    result = deaf.delay("term-deaf", 60)
    child = _started(broker, "term-deaf")
    result.revoke(terminate=True, signal="SIGTERM")
    _terminated(result, "SIGTERM")
    after = gated.delay("term-deaf-after")
    assert _started(broker, "term-deaf-after") != child  # killed and replaced
    broker.rpush("term-deaf-after", "go")
    after.get(timeout=15)


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGUSR1"])
def test_prefork_sends_other_signals_as_they_are(
    start_worker: Any, broker: Any, signame: str
) -> None:
    start_worker("-c", "1")
    result = interruptible.delay(f"term-{signame}", 60)
    child = _started(broker, f"term-{signame}")
    result.revoke(terminate=True, signal=signame)
    _terminated(result, signame)
    assert _list(broker, f"term-{signame}") == []  # it died: no cleanup ran
    after = gated.delay(f"term-{signame}-after")
    assert _started(broker, f"term-{signame}-after") != child
    broker.rpush(f"term-{signame}-after", "go")
    after.get(timeout=15)


def test_an_unknown_signal_is_refused_at_the_call(broker: Any) -> None:
    result = add.delay(1, 1)
    with pytest.raises(ValueError, match="SIGNOPE.*unknown signal"):
        result.revoke(terminate=True, signal="SIGNOPE")
