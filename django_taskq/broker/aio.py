"""redis.asyncio clients of the result store, one per event loop, for ``await aget()``.

A redis.asyncio client belongs to the loop its connections were made on, so
each running loop gets its own, built from the same URL and connection
options as the synchronous client (``broker/connection.py``) with redis-py's
own asyncio classes: ``redis.asyncio.Redis`` for one Redis,
``redis.asyncio.sentinel.Sentinel(...).master_for(...)`` for a Sentinel
master, ``redis.asyncio.cluster.RedisCluster`` for a Cluster.

The cache is keyed weakly by the loop. A client's connections refer to their
loop, so a weak key alone would never let go of it; two things end an
entry instead. The loop closes the client itself: an async generator started
on the loop holds it, and ``loop.shutdown_asyncgens()`` (which
``asyncio.run()`` and ``asyncio.Runner`` call before closing the loop) runs
its ``finally``, which closes the client and drops the entry. A loop closed
without that step is found closed at the next lookup and its entry dropped.
A changed setting (``override_settings``) drops every entry, as
``connection.reset()`` does for the synchronous clients; each loop then
closes its old client (asyncio finalizes the dropped generator on it).

With ``TASKQ_REDIS_CACHE_ALIAS`` and no URL there is nothing to build an
asyncio client from (the cache's pool is synchronous): ``client()`` returns
None and the caller waits on a thread instead.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.signals import setting_changed
from django.dispatch import receiver

from django_taskq.broker import urls
from django_taskq.conf import affects_taskq, taskq_settings

#: Connections per Cluster node. redis.asyncio's default (100) would make the
#: 101st concurrent wait fail at once; each waiting aget() holds one.
CLUSTER_MAX_CONNECTIONS = 2**16

T = TypeVar("T")

#: Connection options that are synchronous objects (or synchronous-only hooks).
_SYNC_ONLY = ("connection_class", "connection_pool", "redis_connect_func", "retry")


@dataclass
class _Entry:
    client: Any
    #: The async generator that closes ``client`` when its loop shuts down.
    closer: Any = None


_lock = threading.Lock()
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry] = weakref.WeakKeyDictionary()


def _options() -> dict[str, Any]:
    """The broker's connection options, for redis.asyncio (no retries inside redis-py)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from django_taskq.broker.connection import _pool_options

    options = {k: v for k, v in _pool_options().items() if k not in _SYNC_ONLY}
    options["retry"] = Retry(NoBackoff(), 0)
    return options


def _sentinel(target: urls.RedisTarget, options: dict[str, Any]) -> Any:
    from redis.asyncio.sentinel import Sentinel

    from django_taskq.broker.sentinel import sentinel_options

    sentinel_kwargs = sentinel_options(target, options)
    sentinel_kwargs.pop("connection_class", None)  # a synchronous class
    if target.tls:
        sentinel_kwargs["ssl"] = True
    kwargs = dict(options)
    kwargs.update(target.options)
    kwargs["db"] = target.db
    kwargs["ssl"] = target.tls  # the pool picks SentinelManaged(SSL)Connection from it
    manager = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    return manager.master_for(target.service, **kwargs)


def _cluster(target: urls.RedisTarget, options: dict[str, Any]) -> Any:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    kwargs = {k: v for k, v in options.items() if k != "health_check_interval"}
    kwargs.update(target.options)
    kwargs["ssl"] = target.tls
    kwargs.setdefault("max_connections", CLUSTER_MAX_CONNECTIONS)
    (host, port), *others = target.nodes
    return RedisCluster(
        host=host,
        port=port,
        startup_nodes=[ClusterNode(h, p) for h, p in others],
        **kwargs,
    )


def build(url: str, setting: str) -> Any:
    """A new redis.asyncio client of ``url`` (one Redis, Sentinel or Cluster)."""
    import redis.asyncio

    target = urls.parse(url, setting)
    options = _options()
    if target.topology == "cluster":
        return _cluster(target, options)
    if target.topology == "sentinel":
        return _sentinel(target, options)
    return redis.asyncio.Redis.from_url(url, **options)


def _results_url() -> tuple[str, str] | None:
    """(URL, setting) of the result store, or None when only a cache alias names it."""
    if taskq_settings.RESULT_BACKEND:
        return str(taskq_settings.RESULT_BACKEND), "TASKQ_RESULT_BACKEND"
    if taskq_settings.BROKER_URL:
        return str(taskq_settings.BROKER_URL), taskq_settings.origin("BROKER_URL")
    if taskq_settings.REDIS_CACHE_ALIAS:
        return None
    from django_taskq.broker.connection import DEFAULT_URL

    return DEFAULT_URL, "TASKQ_BROKER_URL"


async def aclose(client: Any) -> None:
    """Close every connection of ``client`` (and of a Sentinel master's Sentinel clients)."""
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


async def _close_with_loop(loop: asyncio.AbstractEventLoop, entry: _Entry) -> AsyncIterator[None]:
    """Suspended for the loop's life; its ``finally`` closes the client (module doc)."""
    try:
        yield
    finally:
        with _lock:
            if _clients.get(loop) is entry:
                del _clients[loop]
        try:
            await aclose(entry.client)
        except Exception:  # closing on the way out: a dead connection is already closed
            pass


async def client() -> Any:
    """The result store's redis.asyncio client for the running loop (None: see module doc)."""
    loop = asyncio.get_running_loop()
    entry = _clients.get(loop)
    if entry is not None:
        return entry.client
    found = _results_url()
    if found is None:
        return None
    with _lock:
        for old in [other for other in _clients if other.is_closed()]:
            del _clients[old]
        entry = _clients.get(loop)
        if entry is None:
            entry = _Entry(build(*found))
            _clients[loop] = entry
            fresh = True
        else:
            fresh = False
    if fresh:
        closer = _close_with_loop(loop, entry)
        await closer.__anext__()  # started here, so this loop finalizes it
        entry.closer = closer
    return entry.client


async def bounded(wait: Coroutine[Any, Any, T], timeout: float | None) -> T:
    """Await ``wait``, with Redis failures raised as the synchronous client raises them.

    With a ``timeout``, the whole wait ends within it plus
    TASKQ_PUBLISH_TIMEOUT, as ``get()``'s deadline-aware connections do:
    past that (Redis stopped answering) it raises ``redis.TimeoutError``.
    On a Cluster, a reconfiguring slot or a cluster whose nodes cannot be
    reached raises ``ClusterUnavailable``, as ``TaskqCluster`` does. The
    caller's ``translating_errors`` turns both into BrokerUnavailable.
    """
    import builtins

    import redis

    from django_taskq.broker.cluster import RECONFIGURING, ClusterUnavailable, _unavailable

    try:
        if timeout is None:
            return await wait
        limit = max(float(timeout), 0.0) + float(taskq_settings.PUBLISH_TIMEOUT)
        bound = asyncio.timeout(limit)
        try:
            async with bound:
                return await wait
        except builtins.TimeoutError as exc:  # the task's TimeoutError is a subclass
            if not bound.expired():
                raise
            raise redis.TimeoutError(f"no answer within {limit:g}s") from exc
    except RECONFIGURING as exc:
        raise _unavailable(exc) from exc
    except redis.exceptions.RedisClusterException as exc:
        if "cannot be connected" not in str(exc):
            raise
        raise ClusterUnavailable(f"no node of the cluster answered ({exc})") from exc


def reset() -> None:
    """Drop every loop's client (each loop closes its own; see module doc)."""
    with _lock:
        _clients.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """A changed broker setting takes effect at the next ``aget()``, as for the sync clients."""
    if affects_taskq(setting):
        reset()


__all__ = ["CLUSTER_MAX_CONNECTIONS", "aclose", "bounded", "build", "client", "reset"]
