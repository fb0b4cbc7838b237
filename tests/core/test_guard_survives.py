"""A consumer's guard thread outlives a round that fails on something other than a lost Redis.

The guard flushes finished tasks' results while the next task runs and hands
back unstarted messages when one runs long. If one of its rounds raised
anything but a connection error, the thread used to die with a traceback and
the consumer ran on without it: results then waited for the end of the batch.
Here one flush from the guard fails on purpose; the result of the task before
a long one must still be stored while the long one runs.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from tests.testapp.tasks import add, gated


def test_a_failed_guard_round_is_logged_and_the_guard_goes_on(
    broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from django_taskq.worker.consumer import Consumer

    stop = threading.Event()
    consumer = Consumer("guard-test", ["default"], "guard@test", stop)
    consumer.batch_size = 10  # add() and gated() are fetched in one batch
    real_flush = consumer.settler.flush
    failed = threading.Event()

    def flush() -> None:
        if threading.current_thread().name == "taskq-guard" and not failed.is_set():
            failed.set()
            raise RuntimeError("injected: this flush of the guard fails")
        real_flush()

    consumer.settler.flush = flush  # type: ignore[method-assign]
    gate = f"gate:{uuid.uuid4().hex}"
    first = add.delay(1, 2)
    long_one = gated.delay(gate)
    runner = threading.Thread(target=consumer.run, name="consumer")
    runner.start()
    try:
        assert broker.blpop([f"{gate}:started"], timeout=30) is not None
        # add() ended before gated() started; gated() still runs, so only
        # the guard can have stored add()'s result, after its failed round.
        assert first.get(timeout=20) == 3
        assert failed.is_set()
        assert long_one.state == "PENDING"
    finally:
        broker.rpush(gate, 1)
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert long_one.get(timeout=20) > 0
    assert "a round of its guard thread failed; the guard goes on" in caplog.text
