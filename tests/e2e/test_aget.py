"""``await AsyncResult.aget()`` on redis.asyncio: get()'s wait and errors, on the event loop.

The waits are counted on the Redis side (``INFO commandstats``, summed over
the primaries on a Cluster) and synchronised on what Redis reports
(``blocked_clients``), so they hold on every topology the session runs on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import AsyncResult, states
from django_taskq.broker import aio, keys
from django_taskq.exceptions import BrokerUnavailable, TaskRevokedError, TimeoutError
from django_taskq.messages import dumps
from tests.e2e_helpers import blocked_clients, command_calls
from tests.testapp.tasks import async_fail, async_waits_inside, sleep_then
from tests.topology import TOPOLOGY, single_redis_only

pytestmark = pytest.mark.e2e


async def _until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Return once ``condition()`` holds (Redis's own report), or fail after ``within`` seconds."""
    end = time.monotonic() + within
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {within}s")
        await asyncio.sleep(0.01)


def _store(task_id: str, status: str, result: Any, **extra: Any) -> None:
    """Store a record as a worker does (store_result.lua, which wakes the waiters)."""
    from django_taskq.broker import results

    record = {"status": status, "result": result, "traceback": None, "date_done": time.time()}
    results.store(task_id, dumps({**record, **extra}), status)


def test_aget_blocks_once_and_wakes_on_a_result_stored_later(broker: Any) -> None:
    """One pipeline (wait_result.lua, BLPOP): no polling, and the wake-up carries the record."""
    blpops, gets, blocked = (
        command_calls(broker, "blpop"),
        command_calls(broker, "get"),
        blocked_clients(broker),
    )
    evals = command_calls(broker, "eval")
    multis = command_calls(broker, "multi")

    async def scenario() -> Any:
        waiting = asyncio.create_task(AsyncResult("later").aget(timeout=30))
        await _until(lambda: blocked_clients(broker) > blocked, "the aget's BLPOP")
        _store("later", states.SUCCESS, {"value": 42})
        return await waiting

    started = time.monotonic()
    assert asyncio.run(scenario()) == {"value": 42}
    assert time.monotonic() - started < 5  # woken, not at the end of a 5 s slice
    assert command_calls(broker, "blpop") - blpops == 1
    assert command_calls(broker, "eval") - evals == 1
    # wait_result.lua's GET (before the BLPOP) and store_result.lua's own.
    assert command_calls(broker, "get") - gets == 1 + 1
    assert command_calls(broker, "multi") == multis  # a plain pipeline, no transaction


def test_150_agets_on_one_loop_share_its_thread(broker: Any) -> None:
    # More than redis-py 8's default pool of 100 connections: each wait holds one.
    ids = [f"many-{i}" for i in range(150)]
    blocked = blocked_clients(broker)
    threads_before = threading.active_count()
    seen: list[int] = []

    async def scenario() -> list[Any]:
        waits = asyncio.gather(*(AsyncResult(i).aget(timeout=30) for i in ids))
        await _until(lambda: blocked_clients(broker) >= blocked + 150, "150 blocked BLPOPs")
        seen.append(threading.active_count())
        for n, task_id in enumerate(ids):
            _store(task_id, states.SUCCESS, n)
        return await waits

    assert asyncio.run(scenario()) == list(range(150))
    assert seen[0] == threads_before  # no thread per wait: all 150 on the loop's


def test_aget_times_out_with_gets_error() -> None:
    with pytest.raises(TimeoutError) as sync_error:
        AsyncResult("never-sent").get(timeout=0.1)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as async_error:
        asyncio.run(AsyncResult("never-sent").aget(timeout=0.1))
    assert time.monotonic() - started < 2
    assert str(async_error.value) == str(sync_error.value)


def test_aget_reraises_a_failure_and_returns_it_without_propagate(start_worker: Any) -> None:
    start_worker("-P", "solo")
    failed = async_fail.delay("broke for aget")

    async def scenario() -> Any:
        with pytest.raises(ValueError, match="broke for aget"):
            await failed.aget(timeout=15)
        return await AsyncResult(failed.id).aget(timeout=15, propagate=False)

    returned = asyncio.run(scenario())
    assert isinstance(returned, ValueError) and str(returned) == "broke for aget"


def test_aget_of_a_revoked_task_raises_task_revoked_error(start_worker: Any) -> None:
    sent = sleep_then.apply_async((0, "never"), countdown=60)
    sent.revoke()
    with pytest.raises(TaskRevokedError, match=f"task {sent.id} was revoked"):
        asyncio.run(AsyncResult(sent.id).aget(timeout=15))


def test_a_revoke_wakes_a_waiting_aget(broker: Any) -> None:
    sent = sleep_then.apply_async((0, "never"), countdown=60)
    blocked = blocked_clients(broker)

    async def scenario() -> None:
        waiting = asyncio.create_task(AsyncResult(sent.id).aget(timeout=30))
        await _until(lambda: blocked_clients(broker) > blocked, "the aget's BLPOP")
        sent.revoke()
        await waiting

    with pytest.raises(TaskRevokedError):
        asyncio.run(scenario())


def test_aget_inside_a_task_is_refused_unless_allowed(start_worker: Any) -> None:
    start_worker("-c", "2")
    refused = async_waits_inside.delay(False).get(timeout=15)
    assert refused.startswith("refused: never wait for a result")
    assert async_waits_inside.delay(True).get(timeout=15) == 2


def test_aget_says_redis_is_unavailable_as_get_does() -> None:
    with override_settings(TASKQ_RESULT_BACKEND="redis://127.0.0.1:1/0"):
        with pytest.raises(BrokerUnavailable) as sync_error:
            AsyncResult("x").get(timeout=1)
        with pytest.raises(BrokerUnavailable) as async_error:
            asyncio.run(AsyncResult("x").aget(timeout=1))
    assert str(async_error.value).startswith(
        "cannot wait for task x: Redis at redis://127.0.0.1:1/0"
    )
    assert "TASKQ_RESULT_BACKEND" in str(async_error.value)
    assert str(sync_error.value).split(" (")[0] == str(async_error.value).split(" (")[0]


def test_the_loop_closes_its_client(broker: Any) -> None:
    _store("done", states.SUCCESS, 1)
    kept: list[Any] = []

    async def scenario() -> Any:
        value = await AsyncResult("done").aget(timeout=5)
        kept.append(await aio.client())
        assert await aio.client() is kept[-1]  # one client per loop
        return value

    assert asyncio.run(scenario()) == 1
    expected = {"single": "Redis", "sentinel": "Redis", "cluster": "RedisCluster"}[TOPOLOGY]
    assert type(kept[0]).__module__.startswith("redis.asyncio.")
    assert type(kept[0]).__name__ == expected
    if TOPOLOGY == "sentinel":
        assert type(kept[0].connection_pool).__name__ == "SentinelConnectionPool"
    assert len(aio._clients) == 0  # the loop's shutdown closed it and dropped it
    assert asyncio.run(scenario()) == 1
    assert kept[0] is not kept[1]  # a new loop, a new client
    assert broker.exists(keys.result("done"))


def test_a_group_result_is_awaited_member_by_member() -> None:
    from django_taskq.result_group import GroupResult

    group = GroupResult("g", [AsyncResult("g1"), GroupResult("inner", [AsyncResult("g2")])])
    _store("g1", states.SUCCESS, 1)
    _store("g2", states.SUCCESS, 2)
    assert asyncio.run(group.ajoin(timeout=5)) == [1, [2]]
    unfinished = GroupResult("h", [AsyncResult("g1"), AsyncResult("h2")])
    with pytest.raises(TimeoutError, match="group h did not finish within 0.2s"):
        asyncio.run(unfinished.aget(timeout=0.2))


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://127.0.0.1:1/", "redis+sentinel://127.0.0.1:1/mymaster/0"],
    ids=["cluster", "sentinel"],
)
def test_aget_says_a_cluster_or_sentinel_is_unavailable(url: str) -> None:
    with override_settings(TASKQ_RESULT_BACKEND=url), pytest.raises(BrokerUnavailable) as error:
        asyncio.run(AsyncResult("x").aget(timeout=1))
    assert str(error.value).startswith(f"cannot wait for task x: Redis at {url}")


def test_an_eager_result_is_awaited_without_redis() -> None:
    from tests.testapp.tasks import add

    assert asyncio.run(add.apply((2, 3)).aget()) == 5
    failed = async_fail.apply(("eager broke",))
    with pytest.raises(ValueError, match="eager broke"):
        asyncio.run(failed.aget())


@single_redis_only
def test_with_only_a_cache_alias_aget_waits_on_a_thread() -> None:
    """No URL to build a redis.asyncio client from: get() runs on a thread, as before."""
    from django.conf import settings

    caches = {
        **settings.CACHES,
        "taskq": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": settings.TASKQ_BROKER_URL,
        },
    }
    _store("cached", states.SUCCESS, "via the cache's pool")

    async def scenario() -> Any:
        assert await aio.client() is None
        return await AsyncResult("cached").aget(timeout=5)

    with override_settings(CACHES=caches, TASKQ_BROKER_URL=None, TASKQ_REDIS_CACHE_ALIAS="taskq"):
        assert asyncio.run(scenario()) == "via the cache's pool"


@single_redis_only  # looks at a connection pool; the closing is the same on every topology
def test_a_changed_setting_gives_the_loop_a_new_client_and_closes_the_old() -> None:
    import gc

    _store("settled", states.SUCCESS, 7)

    async def scenario() -> None:
        assert await AsyncResult("settled").aget(timeout=5) == 7
        old = await aio.client()
        [connection] = old.connection_pool._available_connections
        assert connection.is_connected
        with override_settings(TASKQ_RESULT_EXPIRES=600):
            new = await aio.client()
            assert new is not old
            gc.collect()  # the dropped entry's closer: asyncio finalizes it on this loop
            for _ in range(10):
                if not connection.is_connected:
                    break
                await asyncio.sleep(0)
            assert not connection.is_connected

    asyncio.run(scenario())
