"""``async def`` tasks on a real worker: one event loop per consumer, the usual endings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from django_taskq import AsyncResult
from django_taskq.exceptions import SoftTimeLimitExceeded
from tests.testapp.tasks import (
    async_add,
    async_fail,
    async_flaky,
    async_loop_id,
    async_soft_limited,
)

pytestmark = pytest.mark.e2e


LANE = ["--async-concurrency", "4"]  # the same behaviour through the async lane (worker/lane.py)


@pytest.mark.parametrize(
    "pool",
    [
        ["-P", "solo"],
        ["-P", "prefork", "-c", "1"],
        ["-P", "solo", *LANE],
        ["-P", "threads", "-c", "1", *LANE],
    ],
)
def test_an_async_task_runs_on_the_loop_its_consumer_keeps(
    start_worker: Any, pool: list[str]
) -> None:
    start_worker(*pool)
    assert async_add.delay(2, 3).get(timeout=15) == 5
    first = async_loop_id.delay().get(timeout=15)
    second = async_loop_id.delay().get(timeout=15)
    assert first == second  # the same loop (and process) ran both


@pytest.mark.parametrize("lane", [[], LANE], ids=["alone", "lane"])
def test_an_async_failure_and_an_autoretry(start_worker: Any, broker: Any, lane: list[str]) -> None:
    start_worker("-P", "solo", *lane)
    failed = async_fail.delay("async broke")
    with pytest.raises(ValueError, match="async broke"):
        failed.get(timeout=15)
    assert "raise ValueError(message)" in (failed.traceback or "")
    assert async_flaky.delay("async:flaky").get(timeout=15) == 2


@pytest.mark.parametrize("lane", [[], LANE], ids=["alone", "lane"])
def test_the_soft_time_limit_ends_an_async_task_and_the_loop_goes_on(
    start_worker: Any, broker: Any, lane: list[str]
) -> None:
    start_worker("-P", "prefork", "-c", "1", *lane)
    limited = async_soft_limited.delay("async:soft")
    with pytest.raises(SoftTimeLimitExceeded):
        limited.get(timeout=15)
    assert broker.get("async:soft") == b"cleaned up"
    assert async_add.delay(1, 1).get(timeout=15) == 2
    assert broker.get("async:soft:left") == b"1"


def test_eager_calls_run_the_coroutine() -> None:
    assert async_add.apply((4, 5)).get() == 9


def test_an_eager_call_inside_a_running_loop_says_what_to_do() -> None:
    async def inside() -> Any:
        return async_add.apply((1, 2))

    result = asyncio.run(inside())
    with pytest.raises(RuntimeError, match="await the function itself"):
        result.get()


def test_awaiting_the_result_of_a_sent_async_task(start_worker: Any) -> None:
    start_worker("-P", "solo")
    assert AsyncResult(async_add.delay(20, 22).id).get(timeout=15) == 42


def test_adelay_and_aget_from_async_code(start_worker: Any) -> None:
    start_worker("-P", "solo")

    async def view() -> tuple[Any, Any]:
        sent = await async_add.adelay(1, 2)
        other = await async_add.aapply_async((3, 4), countdown=0.1)
        return await sent.aget(timeout=15), await other.aget(timeout=15)

    assert asyncio.run(view()) == (3, 7)


def test_aget_times_out_like_get() -> None:
    from django_taskq.exceptions import TimeoutError

    with pytest.raises(TimeoutError):
        asyncio.run(AsyncResult("never-sent").aget(timeout=0.2))
