"""System checks for connection settings that cannot work together (``taskq.E004``).

Each message names the setting to change and what to use instead. These
read settings only; nothing connects to Redis.

- A ``TASKQ_REDIS_CACHE_ALIAS`` cache that django-redis cannot hand over
  as one Redis connection pool: not a django-redis cache, a Redis Cluster
  (django-redis has no Cluster client), or client-side sharding over
  several servers (a queue's keys would be split between them, and a Lua
  script must find them all on one).
- A ``redis+cluster://`` broker with a ``db`` other than 0 in
  ``TASKQ_BROKER_CONNECTION_OPTIONS`` (a cluster has only db 0).
- A ``redis+sentinel://`` broker whose ``connection_class`` in
  ``TASKQ_BROKER_CONNECTION_OPTIONS`` is not a ``SentinelManagedConnection``
  (it could not ask Sentinel where the master is, so it would not follow
  a failover).
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from django_taskq.broker import urls

DJANGO_REDIS_BACKEND = "django_redis.cache.RedisCache"


def _error(message: str, hint: str) -> Error:
    return Error(message, hint=hint, id="taskq.E004")


def _cache_alias(settings: Any, alias: str) -> list[CheckMessage]:
    cache = settings.CACHES.get(alias)
    if cache is None:
        return []  # taskq.E002 says so
    setting = f"TASKQ_REDIS_CACHE_ALIAS={alias!r}"
    backend = str(cache.get("BACKEND", ""))
    if backend != DJANGO_REDIS_BACKEND:
        return [
            _error(
                f"{setting} names a cache whose BACKEND is {backend!r}; django_taskq can "
                f"only reuse the connection pool of a django-redis cache ({DJANGO_REDIS_BACKEND}).",
                "Set TASKQ_BROKER_URL instead, or point the alias at a django-redis cache.",
            )
        ]
    location = cache.get("LOCATION", "")
    locations = list(location) if isinstance(location, list | tuple) else [location]
    if any(urls.topology_of(str(loc)) == "cluster" for loc in locations):
        return [
            _error(
                f"{setting} names a cache on Redis Cluster, which django-redis does not support.",
                "Set TASKQ_BROKER_URL=redis+cluster://host1:7000,host2:7001/ instead.",
            )
        ]
    client_class = str((cache.get("OPTIONS") or {}).get("CLIENT_CLASS", ""))
    if client_class.endswith("ShardClient") or (
        len(locations) > 1 and not client_class.endswith("SentinelClient")
    ):
        return [
            _error(
                f"{setting} names a cache sharded over several Redis servers by django-redis; "
                "a queue's keys must all live on one Redis (its Lua scripts read them together).",
                "Set TASKQ_BROKER_URL to one Redis, a redis+sentinel:// master or a "
                "redis+cluster:// cluster (which shards by hash slot, keeping a queue together).",
            )
        ]
    return []


def _connection_options(url: str, options: dict[str, Any]) -> list[CheckMessage]:
    topology = urls.topology_of(url)
    if topology == "cluster" and options.get("db") not in (None, 0):
        return [
            _error(
                f"TASKQ_BROKER_CONNECTION_OPTIONS sets db={options['db']!r}, but "
                "TASKQ_BROKER_URL is a Redis Cluster, which has only db 0.",
                "Remove db from TASKQ_BROKER_CONNECTION_OPTIONS, or use TASKQ_KEY_PREFIX "
                "to keep projects apart.",
            )
        ]
    given = options.get("connection_class")
    if topology == "sentinel" and isinstance(given, type):
        from redis.sentinel import SentinelManagedConnection

        if not issubclass(given, SentinelManagedConnection):
            return [
                _error(
                    f"TASKQ_BROKER_CONNECTION_OPTIONS sets connection_class={given.__name__}, "
                    "which cannot ask Sentinel for the master: TASKQ_BROKER_URL is a "
                    "redis+sentinel:// URL, and it would not follow a failover.",
                    "Remove connection_class, or subclass redis.sentinel."
                    "SentinelManagedConnection.",
                )
            ]
    return []


def _replicas(settings: Any) -> list[CheckMessage]:
    replicas = getattr(settings, "TASKQ_BROKER_MIN_REPLICAS", 0)
    timeout = getattr(settings, "TASKQ_BROKER_REPLICA_TIMEOUT", 1.0)
    messages: list[CheckMessage] = []
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        messages.append(
            Error(
                f"TASKQ_BROKER_MIN_REPLICAS={replicas!r} must be a whole number >= 0.",
                hint="0 (the default) waits for no replica; 1 waits until one replica has "
                "each write.",
                id="taskq.E003",
            )
        )
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if not number or timeout <= 0:
        messages.append(
            Error(
                f"TASKQ_BROKER_REPLICA_TIMEOUT={timeout!r} must be a number of seconds > 0.",
                id="taskq.E003",
            )
        )
    return messages


def topology_messages(settings: Any) -> list[CheckMessage]:
    """``taskq.E004`` (and the replica settings' ``taskq.E003``) messages for ``settings``."""
    messages: list[CheckMessage] = _replicas(settings)
    url = getattr(settings, "TASKQ_BROKER_URL", None)
    alias = getattr(settings, "TASKQ_REDIS_CACHE_ALIAS", None)
    if alias and not url:
        messages += _cache_alias(settings, str(alias))
    options = getattr(settings, "TASKQ_BROKER_CONNECTION_OPTIONS", None) or {}
    if url and isinstance(options, dict):
        messages += _connection_options(str(url), options)
    return messages


__all__ = ["topology_messages"]
