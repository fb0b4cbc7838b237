"""Declaring and calling tasks: options checked early, routing, eager mode."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from django_taskq import shared_task, signals, states
from django_taskq.broker import keys
from django_taskq.exceptions import MaxRetriesExceededError
from django_taskq.registry import registry
from django_taskq.task import Task
from tests.testapp.tasks import add, fail, routed_task


def _entries(broker: Any, queue: str = "default", priority: int = 5) -> list[dict[str, Any]]:
    return [json.loads(f[b"b"]) for _, f in broker.xrange(keys.stream(queue, priority))]


def test_name_defaults_to_module_and_function() -> None:
    assert add.name == "tests.testapp.tasks.add"
    assert registry.get("tests.testapp.tasks.add") is add


def test_calling_a_task_runs_it_inline() -> None:
    assert add(2, 3) == 5


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"priority": 10}, "priority must be an integer from 0 to 9"),
        ({"retry_every": 3}, "unknown option(s) retry_every"),
        ({"autoretry_for": ("ValueError",)}, "take exception classes"),
        ({"rate_limit": "10/fortnight"}, "rate_limit='10/fortnight' is not valid"),
        ({"time_limit": -1}, "time_limit must be a number of seconds > 0"),
        ({"soft_time_limit": "60"}, "soft_time_limit must be a number of seconds, not str"),
        ({"queue": "two words"}, "queue must be a name"),
        ({"max_retries": -1}, "max_retries must be a whole number >= 0, or None"),
        ({"default_retry_delay": "soon"}, "default_retry_delay must be a number of seconds"),
        ({"expires": "never"}, "expires must be a number of seconds"),
    ],
)
def test_bad_options_fail_when_declared(options: dict[str, Any], fragment: str) -> None:
    def f() -> None:
        pass

    with pytest.raises((TypeError, ValueError)) as info:
        Task(f, **options)
    assert fragment in str(info.value)


def test_same_name_twice_is_an_error() -> None:
    def one() -> None:
        pass

    def two() -> None:
        pass

    shared_task(name="tests.dup")(one)
    try:
        with pytest.raises(ValueError, match="registered twice"):
            shared_task(name="tests.dup")(two)
    finally:
        registry.unregister("tests.dup")


def test_delay_writes_message_and_pending_record(broker: Any) -> None:
    result = add.delay(2, 2)
    [body] = _entries(broker)
    assert body["task"] == "tests.testapp.tasks.add"
    assert body["args"] == [2, 2] and body["id"] == result.id
    assert result.state == states.PENDING
    assert result.exists()


def test_never_sent_id_does_not_exist() -> None:
    from django_taskq import AsyncResult

    result = AsyncResult("never-sent")
    assert result.state == states.PENDING
    assert not result.exists()


def test_apply_async_options_travel_in_the_message(broker: Any) -> None:
    before = time.time()
    add.apply_async(
        (1, 2),
        queue="q1",
        priority=8,
        task_id="fixed-id",
        headers={"h": 1},
        expires=60,
        ignore_result=True,
        time_limit=5,
        soft_time_limit=4,
    )
    [body] = _entries(broker, "q1", 8)
    assert body["id"] == "fixed-id"
    assert body["headers"] == {"h": 1}
    assert before + 59 < body["expires"] < time.time() + 61
    assert body["ignore_result"] is True
    assert (body["time_limit"], body["soft_time_limit"]) == (5, 4)
    assert not broker.exists(keys.result("fixed-id")), "ignore_result stores no PENDING record"


def test_countdown_and_eta_go_to_the_delayed_set(broker: Any) -> None:
    add.apply_async((1, 1), countdown=30)
    eta = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    add.apply_async((1, 1), eta=eta)
    assert broker.xlen(keys.stream("default", 5)) == 0
    scores = [s for _, s in broker.zrange(keys.delayed("default"), 0, -1, withscores=True)]
    assert len(scores) == 2
    assert abs(scores[0] / 1000 - (time.time() + 30)) < 2
    assert abs(scores[1] / 1000 - eta.timestamp()) < 0.01


def test_routes_pick_the_queue(broker: Any) -> None:
    routed_task.delay(1)
    assert len(_entries(broker, "routed", 5)) == 1


def test_priority_out_of_range_is_refused_at_call() -> None:
    with pytest.raises(ValueError, match="priority must be an integer from 0 to 9"):
        add.apply_async((1, 1), priority=-1)


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        ({"countdown": "10"}, TypeError, "countdown must be a number of seconds, not str"),
        ({"countdown": float("nan")}, ValueError, "countdown must be a finite number"),
        ({"countdown": 10**20}, ValueError, "countdown is out of range"),
        ({"countdown": 10**400}, ValueError, "countdown must be a finite number"),
        ({"eta": float("inf")}, ValueError, "eta must be a finite number"),
        ({"expires": float("nan")}, ValueError, "expires must be a finite number"),
        ({"time_limit": 0}, ValueError, "time_limit must be a number of seconds > 0"),
        ({"soft_time_limit": "x"}, TypeError, "soft_time_limit must be a number of seconds"),
        ({"headers": 5}, TypeError, "headers must be a dict, not int"),
        ({"link": 5}, TypeError, "link and link_error take a signature"),
        ({"link_error": ["x"]}, TypeError, "not a list holding a str"),
    ],
    ids=repr,
)
def test_a_bad_call_option_is_refused_naming_the_task_and_option(
    broker: Any, options: dict[str, Any], error: type[Exception], says: str
) -> None:
    """These reached redis-py or the enqueue script (a ResponseError from Lua), or a worker."""
    with pytest.raises(error) as refused:
        add.apply_async((1, 1), **options)
    assert add.name in str(refused.value) and says in str(refused.value)
    assert broker.dbsize() == 0


def test_a_queue_no_worker_can_consume_is_refused(broker: Any) -> None:
    """``queue="two words"`` was sent, to a stream no worker can read (-Q refuses the name)."""
    for queue in ("two words", "{tag}", "x" * 201):
        with pytest.raises(ValueError, match="queue must be a name of 1-200 characters"):
            add.apply_async((1, 1), queue=queue)
    assert broker.dbsize() == 0


def test_apply_many_names_a_call_that_is_no_args_kwargs_pair(broker: Any) -> None:
    with pytest.raises(TypeError, match=r"add.apply_many\(\): each call is an \(args, kwargs\)"):
        add.apply_many([((1, 2), {}), ((1, 2), {}, {"countdown": 5})])
    assert broker.dbsize() == 0


@pytest.mark.parametrize("timeout", ["10", float("nan"), [1]], ids=repr)
def test_a_wait_with_a_timeout_that_is_no_number_is_refused(broker: Any, timeout: Any) -> None:
    from django_taskq.result_group import GroupResult

    result = add.delay(1, 1)
    with pytest.raises((TypeError, ValueError), match="timeout must be a number of seconds"):
        result.get(timeout=timeout)
    with pytest.raises((TypeError, ValueError), match="timeout must be a number of seconds"):
        GroupResult("g", [result]).get(timeout=timeout)


def test_args_must_be_a_sequence() -> None:
    with pytest.raises(TypeError, match="args must be a list or tuple"):
        add.apply_async(5)  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_delay_on_commit_sends_after_commit_with_id_known_now(broker: Any) -> None:
    with transaction.atomic():
        result = add.delay_on_commit(3, 4)
        assert result.id
        assert broker.xlen(keys.stream("default", 5)) == 0
    [body] = _entries(broker)
    assert body["id"] == result.id


@pytest.mark.django_db(transaction=True)
def test_delay_on_commit_sends_nothing_on_rollback(broker: Any) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        add.delay_on_commit(3, 4)
        raise RuntimeError("rollback")
    assert broker.xlen(keys.stream("default", 5)) == 0


def test_eager_mode_runs_inline_and_propagates() -> None:
    with override_settings(TASKQ_TASK_ALWAYS_EAGER=True, TASKQ_TASK_EAGER_PROPAGATES=True):
        assert add.delay(2, 5).get() == 7
        with pytest.raises(ValueError, match="boom"):
            fail.delay()
    with override_settings(TASKQ_TASK_ALWAYS_EAGER=True):
        result = fail.delay("quiet")
        assert result.state == states.FAILURE
        assert isinstance(result.result, ValueError)
        assert "ValueError: quiet" in (result.traceback or "")


def test_apply_retries_inline_until_success() -> None:
    attempts: list[int] = []

    @shared_task(bind=True, name="tests.retry_inline", max_retries=5, default_retry_delay=100)
    def retry_inline(self: Any) -> int:
        attempts.append(self.request.retries)
        if len(attempts) < 3:
            raise self.retry(exc=RuntimeError("again"))
        return self.request.retries

    try:
        assert retry_inline.apply().get() == 2
        assert attempts == [0, 1, 2]
    finally:
        registry.unregister("tests.retry_inline")


def test_retry_past_max_raises_the_exception() -> None:
    @shared_task(bind=True, name="tests.retry_max", max_retries=1)
    def retry_max(self: Any) -> None:
        raise self.retry(exc=KeyError("gone"), countdown=0)

    @shared_task(bind=True, name="tests.retry_max_noexc", max_retries=0)
    def retry_max_noexc(self: Any) -> None:
        raise self.retry(countdown=0)

    try:
        result = retry_max.apply()
        assert result.state == states.FAILURE and isinstance(result.result, KeyError)
        result = retry_max_noexc.apply()
        assert isinstance(result.result, MaxRetriesExceededError)
    finally:
        registry.unregister("tests.retry_max")
        registry.unregister("tests.retry_max_noexc")


def test_backoff_is_exponential_capped_and_jittered() -> None:
    def f() -> None:
        pass

    plain = Task(f, retry_backoff=True, retry_jitter=False, retry_backoff_max=10)
    assert [plain.backoff_countdown(n) for n in range(6)] == [1, 2, 4, 8, 10, 10]
    factor = Task(f, retry_backoff=3, retry_jitter=False)
    assert factor.backoff_countdown(2) == 12
    jittered = Task(f, retry_backoff=True, retry_backoff_max=600)
    assert all(0 <= jittered.backoff_countdown(5) <= 32 for _ in range(50))


def test_signals_are_sent_around_a_run() -> None:
    seen: list[tuple[str, Any]] = []

    def on_prerun(sender: Any, task_id: str, **kw: Any) -> None:
        seen.append(("prerun", task_id))

    def on_success(sender: Any, result: Any, **kw: Any) -> None:
        seen.append(("success", result))

    def on_failure(sender: Any, exception: BaseException, **kw: Any) -> None:
        seen.append(("failure", type(exception).__name__))

    def on_postrun(sender: Any, state: str, **kw: Any) -> None:
        seen.append(("postrun", state))

    def broken(sender: Any, **kw: Any) -> None:
        raise RuntimeError("a broken receiver does not break the task")

    pairs = [
        (signals.task_prerun, on_prerun),
        (signals.task_success, on_success),
        (signals.task_failure, on_failure),
        (signals.task_postrun, on_postrun),
        (signals.task_prerun, broken),
    ]
    for sig, fn in pairs:
        sig.connect(fn)
    try:
        ok = add.apply((1, 1), task_id="t-ok")
        add_fail = fail.apply()
    finally:
        for sig, fn in pairs:
            sig.disconnect(fn)
    assert ok.get() == 2
    assert seen[:3] == [("prerun", "t-ok"), ("success", 2), ("postrun", "SUCCESS")]
    assert ("failure", "ValueError") in seen
    assert add_fail.state == states.FAILURE


def test_request_knows_its_call() -> None:
    @shared_task(bind=True, name="tests.req")
    def req(self: Any, x: int) -> dict[str, Any]:
        return {
            "id": self.request.id,
            "args": self.request.args,
            "retries": self.request.retries,
            "eager": self.request.is_eager,
            "root": self.request.root_id,
        }

    try:
        out = req.apply((5,), task_id="rid").get()
    finally:
        registry.unregister("tests.req")
    assert out == {"id": "rid", "args": [5], "retries": 0, "eager": True, "root": "rid"}


def test_delay_many_sends_every_call_in_one_go(broker: Any) -> None:
    results = add.delay_many((i, i) for i in range(50))
    bodies = _entries(broker)
    assert [b["args"] for b in bodies] == [[i, i] for i in range(50)]
    assert [b["id"] for b in bodies] == [r.id for r in results]
    assert all(r.exists() for r in results[:3])


def test_apply_many_checks_every_call_before_sending(broker: Any) -> None:
    with pytest.raises(TypeError, match="missing a required argument"):
        add.apply_many([((1, 1), None), ((1,), None)])
    assert broker.xlen(keys.stream("default", 5)) == 0
    add.apply_many([((1, 1), None), (None, {"x": 2, "y": 3})], queue="bulk", priority=7)
    assert broker.xlen(keys.stream("bulk", 7)) == 2


def test_update_state_in_eager_mode_needs_no_redis() -> None:
    @shared_task(bind=True, name="tests.eager_progress")
    def eager_progress(self: Any) -> str:
        self.update_state(state="PROGRESS", meta={"done": 1})
        return "ok"

    try:
        with override_settings(TASKQ_BROKER_URL="redis://127.0.0.1:1/0"):
            assert eager_progress.apply().get() == "ok"
    finally:
        registry.unregister("tests.eager_progress")


def test_task_retry_signal_carries_the_reason() -> None:
    seen: list[tuple[str | None, str]] = []

    def on_retry(sender: Any, request: Any, reason: Any, **kw: Any) -> None:
        seen.append((request.id, repr(reason)))

    @shared_task(bind=True, name="tests.retry_signal", max_retries=1)
    def retry_signal(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=KeyError("first"), countdown=0)
        return "second"

    signals.task_retry.connect(on_retry)
    try:
        assert retry_signal.apply(task_id="rs").get() == "second"
    finally:
        signals.task_retry.disconnect(on_retry)
        registry.unregister("tests.retry_signal")
    assert seen == [("rs", "KeyError('first')")]
