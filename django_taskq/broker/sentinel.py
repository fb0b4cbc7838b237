"""A client for the master that Redis Sentinel names, following its failovers.

redis-py's ``SentinelConnectionPool`` asks the Sentinel processes for the
master's address whenever it makes a connection, and drops a connection
whose server has become a replica (``ReadOnlyError`` turns into a
``ConnectionError``), so after a failover the next command reaches the new
master. Everything else django_taskq relies on is kept: the connections are
deadline-aware (``TASKQ_PUBLISH_TIMEOUT``; their class mixes
``DeadlineMixin`` into redis-py's ``SentinelManagedConnection``), the
Sentinel queries too, and every connection made is counted (a consumer
reads back what it holds after one).

The Sentinel processes get connection options of their own: the socket
timeouts, TLS when the URL is ``rediss+sentinel://``, and the
``sentinel_username``/``sentinel_password`` URL options. redis-py does not
give them the master's password, and most Sentinel set-ups have none.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from django_taskq.broker.deadline import deadline_aware
from django_taskq.broker.urls import RedisTarget

#: Data connection options that the Sentinel processes also get (when not set for them).
_SHARED = ("socket_timeout", "socket_connect_timeout", "socket_keepalive")


def sentinel_options(target: RedisTarget, options: dict[str, Any]) -> dict[str, Any]:
    """Connection options for the Sentinel processes themselves (never the master's password)."""
    found = {k: v for k, v in options.items() if k in _SHARED}
    found.update(target.sentinel_options)
    found["connection_class"] = deadline_aware(
        redis.SSLConnection if found.pop("ssl", False) else redis.Connection
    )
    return found


class TaskqSentinel(Sentinel):
    """redis-py's ``Sentinel``, whose connections to the Sentinels are deadline-aware.

    ``Sentinel`` makes its clients with ``Redis(host, port, **sentinel_kwargs)``,
    which cannot take a connection class, so they are made here instead, with
    a pool each.
    """

    def __init__(self, nodes: list[tuple[str, int]], sentinel_kwargs: dict[str, Any]) -> None:
        super().__init__(nodes, sentinel_kwargs={})  # type: ignore[no-untyped-call]
        self.sentinel_kwargs = sentinel_kwargs
        self.sentinels = [
            redis.Redis(
                connection_pool=redis.ConnectionPool(host=host, port=port, **sentinel_kwargs)
            )
            for host, port in nodes
        ]

    def discover_master(self, service_name: str) -> tuple[str, int]:
        """The master's address, as the first Sentinel that knows it says.

        As redis-py's, with an error that names each Sentinel and what it
        answered (redis-py's lists the reprs of its clients), and says how to
        give the Sentinels a password when they asked for one.
        """
        problems: list[str] = []
        for index, sentinel in enumerate(self.sentinels):
            options = sentinel.connection_pool.connection_kwargs
            where = f"Sentinel {options.get('host')}:{options.get('port')}"
            try:
                masters: Any = sentinel.sentinel_masters()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                problems.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):  # type: ignore[no-untyped-call]
                self.sentinels[0], self.sentinels[index] = sentinel, self.sentinels[0]
                return state["ip"], int(state["port"])
            problems.append(f"{where}: {'the master is down' if state else 'knows no such master'}")
        hint = ""
        if any("AuthenticationError" in p for p in problems):
            hint = "; the Sentinels want a password: add ?sentinel_password=... to the URL"
        raise MasterNotFoundError(
            f"No master found for {service_name!r} ({'; '.join(problems)}){hint}"
        )


def make_client(target: RedisTarget, options: dict[str, Any]) -> redis.Redis:
    """A client of the master named by ``target``, with a connection pool of its own.

    ``options`` are the data connections' keyword arguments (timeouts,
    ``redis_connect_func``...); the URL's own options override them.
    """
    kwargs = dict(options)
    kwargs.update(target.options)
    kwargs["db"] = target.db
    kwargs.pop("ssl", None)
    given = kwargs.pop("connection_class", None)
    base = SentinelManagedSSLConnection if target.tls else SentinelManagedConnection
    if given is not None and not issubclass(given, SentinelManagedConnection):
        given = None  # a plain class cannot follow the master (check taskq.E004 says so)
    kwargs["connection_class"] = deadline_aware(given or base)
    manager = TaskqSentinel(list(target.nodes), sentinel_options(target, options))
    client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
        target.service, connection_pool_class=SentinelConnectionPool, **kwargs
    )
    return client


def clone(client: redis.Redis) -> redis.Redis | None:
    """A client with a new pool of the same master as ``client``'s, or None if it is not Sentinel's.

    For blocking reads and pub/sub, which must not take connections from
    the shared pool. Works for a django-redis Sentinel cache's pool too.
    """
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return None
    kwargs = dict(pool.connection_kwargs)
    kwargs.pop("connection_pool", None)  # the pool's own proxy; the new pool makes one
    new = SentinelConnectionPool(  # type: ignore[no-untyped-call]
        pool.service_name,
        pool.sentinel_manager,
        connection_class=pool.connection_class,
        is_master=pool.is_master,
        check_connection=pool.check_connection,
        **kwargs,
    )
    return redis.Redis(connection_pool=new)


__all__ = ["TaskqSentinel", "clone", "make_client", "sentinel_options"]
