"""Redis clients for the broker and the result store.

The broker is ``TASKQ_BROKER_URL``, or the connection pool of a django-redis
cache named by ``TASKQ_REDIS_CACHE_ALIAS``. Results use the broker unless
``TASKQ_RESULT_BACKEND`` names another Redis. Either URL names one Redis
(``redis://``, ``rediss://``, ``unix://``), the master of a Sentinel set-up
(``redis+sentinel://``, see ``broker/sentinel.py``) or a Redis Cluster
(``redis+cluster://``, see ``broker/cluster.py``); ``broker/urls.py`` reads
them. Only the client differs: every other module runs the same code on
each. Clients are made on first use, per process: redis-py pools notice a
fork and reconnect in the child.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import redis
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_taskq.broker import urls
from django_taskq.broker.deadline import connection_class_for
from django_taskq.conf import affects_taskq, taskq_settings
from django_taskq.exceptions import ImproperlyConfiguredTaskq

DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: The connections one client's pool may open (per node on Cluster). redis-py 8
#: caps a pool at 100 by default and raises "Too many connections" beyond: a
#: threads-pool worker of 100 threads (each consumer holds a connection during
#: its blocking read, beside the flusher, heartbeat and housekeeping) hit it
#: and lost Redis again and again. Each thread uses one connection at a time,
#: so the threads bound the pool; BROKER_CONNECTION_OPTIONS can set a cap.
MAX_CONNECTIONS = 2**16

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
#: Connections made to Redis by this process (see ``connects()``).
_connects = 0


def _counting_connect(connection: Any) -> None:
    """Run redis-py's own handshake, then count the connection."""
    connection.on_connect_check_health(check_health=True)
    _count_connect(connection)


def _count_connect(connection: Any) -> None:
    """Count a connection whose handshake has run (RedisCluster runs it itself)."""
    global _connects
    _connects += 1


def connects() -> int:
    """How many connections this process has made to Redis so far.

    A consumer compares it between fetches: a new connection means one may
    have broken, perhaps with the reply of a command that Redis ran (a fetch
    whose messages are now pending under a consumer that never saw them),
    so it asks the server what it holds. redis-py reconnects a broken idle
    connection silently, which is why an exception alone does not tell.
    """
    return _connects


def fill_pool(client: Any, count: int) -> int:
    """Open ``count`` connections in ``client``'s pool now; returns how many it holds.

    For a threads-pool worker before its threads start: every consumer
    compares ``connects()`` between fetches and, when it moved, asks Redis
    what it holds (a lost fetch reply). A pool that grows one connection at
    a time while a hundred threads ramp up made each new connection cost a
    hundred such checks, for the first seconds of every drain. A cluster
    client (a pool per node, filled as slots are used) is left as it is.
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None or not hasattr(pool, "get_connection"):
        return 0
    taken = []
    try:
        for _ in range(count):
            taken.append(pool.get_connection())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        pass  # a capped pool or Redis away: the consumers make do, as before
    finally:
        for connection in taken:
            pool.release(connection)
    return len(taken)


def broker_url() -> str:
    """The broker URL in effect (the cache's when an alias is configured)."""
    url = taskq_settings.BROKER_URL
    if url:
        return str(url)
    alias = taskq_settings.REDIS_CACHE_ALIAS
    if alias:
        from django.conf import settings

        location = settings.CACHES.get(alias, {}).get("LOCATION", "")
        if isinstance(location, list | tuple):
            location = location[0]
        return str(location)
    return DEFAULT_URL


def redact(url: str) -> str:
    """``url`` with its passwords replaced by ``***`` (for banners and logs)."""
    return urls.redact(url)


def validate_url(url: str, setting: str) -> None:
    """Raise ImproperlyConfigured naming ``setting`` if ``url`` is not a usable Redis URL."""
    urls.parse(url, setting)


def topology() -> urls.Topology:
    """Whether the broker is one Redis, a Sentinel master or a Redis Cluster."""
    from django_taskq.broker.topology import is_cluster

    if is_cluster(get_broker()):
        return "cluster"
    if is_sentinel(get_broker()):
        return "sentinel"
    return "single"


def is_sentinel(client: Any) -> bool:
    """True for a client of a Sentinel-managed master (a URL's or a django-redis cache's)."""
    from redis.sentinel import SentinelConnectionPool

    return isinstance(getattr(client, "connection_pool", None), SentinelConnectionPool)


def _pool_options() -> dict[str, Any]:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "socket_timeout": taskq_settings.BROKER_SOCKET_TIMEOUT,
        "socket_connect_timeout": taskq_settings.BROKER_CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": 30,
        # No silent retries inside redis-py (it retries ten times by
        # default): every caller here decides itself what a lost connection
        # means. A consumer must know that its fetch's reply was lost, so it
        # takes back what it holds; a publish retries with its once key.
        "retry": Retry(NoBackoff(), 0),
        "redis_connect_func": _counting_connect,
        "max_connections": MAX_CONNECTIONS,
    }
    options.update(taskq_settings.BROKER_CONNECTION_OPTIONS or {})
    return options


def _from_url(url: str, setting: str) -> redis.Redis:
    target = urls.parse(url, setting)
    options = _pool_options()
    if target.topology == "cluster":
        from django_taskq.broker import cluster

        # A RedisCluster offers the command methods of redis.Redis; the rest
        # of the code is written once, against that interface.
        return cast(redis.Redis, cluster.make_client(target, options, on_connect=_count_connect))
    if target.topology == "sentinel":
        from django_taskq.broker import sentinel

        return sentinel.make_client(target, options)
    # Connections that honour TASKQ_PUBLISH_TIMEOUT's deadline (broker/deadline.py);
    # without a deadline they are redis-py's own.
    options["connection_class"] = connection_class_for(url, options.get("connection_class"))
    return redis.Redis.from_url(url, **options)


def client_for(url: str, setting: str = "the URL") -> redis.Redis:
    """A new client of any Redis URL django_taskq accepts (one Redis, Sentinel, Cluster).

    With the same connection options as the broker's. ``setting`` names
    where the URL came from, for the error a malformed one raises.
    """
    return _from_url(url, setting)


def _from_cache_alias(alias: str) -> redis.Redis:
    try:
        from django_redis import get_redis_connection
    except ImportError as exc:  # pragma: no cover - django-redis is a dependency
        raise ImproperlyConfiguredTaskq(
            f"TASKQ_REDIS_CACHE_ALIAS={alias!r} needs django-redis installed"
        ) from exc
    from django.conf import settings

    if alias not in settings.CACHES:
        raise ImproperlyConfiguredTaskq(
            f"TASKQ_REDIS_CACHE_ALIAS={alias!r} names no cache in CACHES "
            f"(known: {', '.join(settings.CACHES) or 'none'})"
        )
    client = get_redis_connection(alias)
    # django-redis hands out a client with its own pool; reuse that pool but
    # ask for str-free bytes responses like ours.
    return redis.Redis(connection_pool=client.connection_pool)


def get_broker() -> redis.Redis:
    """The Redis client for queues (made on first use in this process)."""
    client = _clients.get("broker")
    if client is not None:
        return client
    with _lock:
        client = _clients.get("broker")
        if client is None:
            if taskq_settings.BROKER_URL:
                client = _from_url(
                    str(taskq_settings.BROKER_URL), taskq_settings.origin("BROKER_URL")
                )
            elif taskq_settings.REDIS_CACHE_ALIAS:
                client = _from_cache_alias(str(taskq_settings.REDIS_CACHE_ALIAS))
            else:
                client = _from_url(DEFAULT_URL, "TASKQ_BROKER_URL")
            _clients["broker"] = client
    return client


def get_backend() -> redis.Redis:
    """The Redis client for results: the broker unless TASKQ_RESULT_BACKEND is set."""
    url = taskq_settings.RESULT_BACKEND
    if not url:
        return get_broker()
    client = _clients.get("backend")
    if client is None:
        with _lock:
            client = _clients.get("backend")
            if client is None:
                client = _from_url(str(url), taskq_settings.origin("RESULT_BACKEND"))
                _clients["backend"] = client
    return client


def backend_is_broker() -> bool:
    """True when results and queues share one Redis (one round trip for both)."""
    return not taskq_settings.RESULT_BACKEND


def new_client() -> redis.Redis:
    """A broker client with a pool of its own (for blocking reads and pub/sub)."""
    url = taskq_settings.BROKER_URL
    if url and urls.topology_of(str(url)) != "single":
        return _from_url(str(url), taskq_settings.origin("BROKER_URL"))
    broker = get_broker()
    from django_taskq.broker import sentinel

    clone = sentinel.clone(broker)  # a django-redis Sentinel cache
    if clone is not None:
        return clone
    kwargs = dict(broker.connection_pool.connection_kwargs)
    pool = redis.ConnectionPool(connection_class=broker.connection_pool.connection_class, **kwargs)
    return redis.Redis(connection_pool=pool)


def close(client: Any) -> None:
    """Close every connection of ``client`` (one Redis, Sentinel or Cluster)."""
    from django_taskq.broker.topology import is_cluster

    if is_cluster(client):
        # Not client.close(): that forgets the cluster's nodes, and a caller
        # still holding the client (a test, a thread) must keep a working one.
        client.disconnect_connection_pools()
    else:
        client.connection_pool.disconnect()


def reset() -> None:
    """Drop cached clients (after a settings change or in a forked child)."""
    with _lock:
        for client in _clients.values():
            try:
                close(client)
            except Exception:
                pass
        _clients.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """A changed broker setting (``override_settings`` in tests) takes effect at once."""
    if affects_taskq(setting):
        reset()
