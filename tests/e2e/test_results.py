"""AsyncResult against a real worker: get() wakes on the result, states, errors."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from django_taskq import AsyncResult, states
from django_taskq.broker import keys
from django_taskq.exceptions import TaskError, TimeoutError
from django_taskq.result import store_state
from tests.e2e_helpers import blocked_clients, command_calls
from tests.testapp.tasks import add, fail, progress, unencodable_result

pytestmark = pytest.mark.e2e


def test_delay_get_and_result_fields(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = add.delay(2, 3)
    assert result.get(timeout=10) == 5
    assert result.state == states.SUCCESS and result.successful() and result.ready()
    assert result.date_done is not None
    assert result.worker and result.worker.startswith("taskq@")


def test_failure_reraises_the_task_exception_with_worker_traceback(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = fail.delay("broken input")
    with pytest.raises(ValueError, match="broken input"):
        result.get(timeout=10)
    assert result.failed()
    assert "raise ValueError(message)" in (result.traceback or "")
    assert isinstance(result.get(propagate=False), ValueError)


def test_unimportable_exception_type_becomes_task_error() -> None:
    store_state("x1", states.FAILURE, {"exc_type": "nowhere.CustomError", "exc_message": "bad"})
    with pytest.raises(TaskError, match="nowhere.CustomError: bad") as info:
        AsyncResult("x1").get(timeout=1)
    assert info.value.remote_type == "nowhere.CustomError"


def test_get_wakes_when_the_result_is_stored_not_by_polling() -> None:
    result = AsyncResult("wake-me")
    stored_at: list[float] = []

    def later() -> None:
        time.sleep(0.3)
        stored_at.append(time.monotonic())
        store_state("wake-me", states.SUCCESS, 42)

    threading.Thread(target=later).start()
    assert result.get(timeout=5) == 42
    woke = time.monotonic()
    # The waiter is woken by the store itself (well under the 5 s wait slice).
    assert woke - stored_at[0] < 1.0


def test_two_waiters_on_one_id_both_wake() -> None:
    values: list[Any] = []
    threads = [
        threading.Thread(target=lambda: values.append(AsyncResult("both").get(timeout=5)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    time.sleep(0.2)
    store_state("both", states.SUCCESS, "ok")
    for t in threads:
        t.join(6)
    assert values == ["ok", "ok"]


def test_get_timeout_raises() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        AsyncResult("nothing").get(timeout=0.3)
    assert time.monotonic() - started < 3


def test_forget_removes_the_record(broker: Any) -> None:
    store_state("f1", states.SUCCESS, 1)
    result = AsyncResult("f1")
    assert result.exists()
    result.forget()
    assert not result.exists() and not broker.exists(keys.result("f1"))


def test_unencodable_return_value_is_a_clear_failure(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = unencodable_result.delay()
    with pytest.raises(TypeError, match="returned a object, which cannot be stored as JSON"):
        result.get(timeout=10)


def test_track_started_and_progress_states(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    result = progress.delay(2, "progress-go")
    deadline = time.monotonic() + 10
    seen = set()
    while time.monotonic() < deadline and "PROGRESS" not in seen:
        seen.add(result.state)
        time.sleep(0.02)
    assert "PROGRESS" in seen
    assert result.info == {"done": 1, "total": 2}
    broker.rpush("progress-go", 1, 1)
    assert result.get(timeout=10) == 2


def test_ignore_result_stores_nothing(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    ignored = add.apply_async((1, 1), ignore_result=True)
    marker = add.delay(0, 0)
    marker.get(timeout=10)
    assert not ignored.exists() and not broker.exists(keys.result(ignored.id))


def test_get_inside_a_task_is_refused_unless_allowed(start_worker: Any) -> None:
    from tests.testapp.tasks import waits_inside

    start_worker("-c", "2")
    refused = waits_inside.delay(False).get(timeout=10)
    assert refused.startswith("refused: never wait for a result")
    assert "Chain the tasks" in refused
    assert waits_inside.delay(True).get(timeout=10) == 2


def test_get_inside_a_task_is_refused_even_for_a_finished_result(start_worker: Any) -> None:
    """The refusal does not depend on timing: a finished result is refused too; .result reads it."""
    from tests.testapp.tasks import reads_ready

    start_worker("-P", "solo")
    done = add.delay(20, 1)
    assert done.get(timeout=10) == 21
    refused, value = reads_ready.delay(done.id).get(timeout=10)
    assert refused.startswith("refused: never wait for a result")
    assert ".result" in refused
    assert value == 21


def test_waiting_through_an_unfinished_state_does_not_spin(broker: Any) -> None:
    """A wake-up for a state that is not final (STARTED, RETRY) must not busy-loop."""

    def progress_then_nothing() -> None:
        time.sleep(0.2)
        store_state("slow-one", states.STARTED, None)

    # The commands a wait sends, counted by Redis per command: not every
    # command it processed, which on Sentinel includes the sentinels' and
    # the replica's own traffic (a CI run counted exactly 30 that way).
    waiting = ("get", "eval", "evalsha", "blpop", "exists")

    def calls() -> int:
        return sum(command_calls(broker, name) for name in waiting)

    threading.Thread(target=progress_then_nothing).start()
    before = calls()
    with pytest.raises(TimeoutError):
        AsyncResult("slow-one").get(timeout=1.5)
    used = calls() - before
    # Two reads and two blocking waits, give or take: not thousands.
    assert used < 30, used


def test_waiter_sets_its_own_wakeup_list(broker: Any) -> None:
    done = threading.Event()
    threading.Thread(target=lambda: (AsyncResult("own").get(timeout=5), done.set())).start()
    time.sleep(0.2)
    [member] = broker.smembers(keys.waiters("own"))
    assert member.decode().startswith(keys.wakeup("own", ""))
    store_state("own", states.SUCCESS, 1)
    assert done.wait(5)


def test_a_waiter_woken_by_a_final_state_reads_nothing_more(broker: Any) -> None:
    """get() waits in one pipeline, and the wake-up carries the record: no read after it."""

    gets, blpops, blocked = (
        command_calls(broker, "get"),
        command_calls(broker, "blpop"),
        blocked_clients(broker),
    )
    evals = command_calls(broker, "eval")
    values: list[Any] = []
    waiter = threading.Thread(target=lambda: values.append(AsyncResult("carried").get(10)))
    waiter.start()
    end = time.monotonic() + 10
    while blocked_clients(broker) <= blocked:  # Redis's own report: the waiter's BLPOP blocks
        assert time.monotonic() < end, "the waiter never blocked"
        time.sleep(0.01)
    store_state("carried", states.SUCCESS, 42)
    waiter.join(10)
    assert values == [42]
    assert command_calls(broker, "blpop") - blpops == 1
    assert command_calls(broker, "eval") - evals == 1  # wait_result.lua, in the BLPOP's pipeline
    # wait_result.lua's GET before the BLPOP blocked, and store_result.lua's own.
    assert command_calls(broker, "get") - gets == 1 + 1


def test_a_finished_task_is_read_in_one_round_trip(broker: Any) -> None:
    """A final record is pushed to the waiter's list by wait_result.lua: BLPOP returns it."""

    store_state("done-before", states.SUCCESS, 5)
    blpops, started = command_calls(broker, "blpop"), time.monotonic()
    assert AsyncResult("done-before").get(timeout=10) == 5
    assert time.monotonic() - started < 4  # not at the end of a 5 s slice
    assert command_calls(broker, "blpop") - blpops == 1


def test_a_stale_wake_up_of_an_older_worker_is_read_again(broker: Any) -> None:
    """A bare ``1`` (a worker of a version before the record was pushed) still ends the wait."""
    result = AsyncResult("older-worker")
    key = result._wakeup_key()
    result._wakeup_key = lambda: key  # type: ignore[method-assign]
    broker.rpush(key, 1)
    store_state("older-worker", states.SUCCESS, "read again")
    assert result.get(timeout=10) == "read again"


def test_a_record_written_with_other_json_spacing_is_read_at_once(broker: Any) -> None:
    """A finished record not written as django_taskq writes them (a 0.1 one) still ends the wait."""
    broker.set(keys.result("spaced"), '{"status": "SUCCESS", "result": 3}', px=60_000)
    started = time.monotonic()
    assert AsyncResult("spaced").get(timeout=10) == 3
    assert time.monotonic() - started < 4  # pushed by wait_result.lua, not a 5 s slice
