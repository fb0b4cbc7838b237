"""Redis clients for the broker and the result store.

The broker is ``TASKQ_BROKER_URL`` (``redis://`` or ``rediss://``, with
password, ACL user and db number), or the connection pool of a django-redis
cache named by ``TASKQ_REDIS_CACHE_ALIAS``. Results use the broker unless
``TASKQ_RESULT_BACKEND`` names another Redis. Clients are made on first use,
per process: redis-py pools notice a fork and reconnect in the child.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_taskq.broker.deadline import connection_class_for
from django_taskq.conf import affects_taskq, taskq_settings
from django_taskq.exceptions import ImproperlyConfiguredTaskq

DEFAULT_URL = "redis://127.0.0.1:6379/0"

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
#: Connections made to Redis by this process (see ``connects()``).
_connects = 0


def _counting_connect(connection: Any) -> None:
    """Run redis-py's own handshake, then count the connection."""
    global _connects
    connection.on_connect_check_health(check_health=True)
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
    """``url`` with its password replaced by ``***`` (for banners and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def validate_url(url: str, setting: str) -> None:
    """Raise ImproperlyConfigured naming ``setting`` if ``url`` is not a Redis URL."""
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfiguredTaskq(
            f"{setting}={url!r} is not a Redis URL: use redis://[user:password@]host:port/db, "
            "rediss:// for TLS, or unix:///path/to/socket"
        )


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
    }
    options.update(taskq_settings.BROKER_CONNECTION_OPTIONS or {})
    return options


def _from_url(url: str, setting: str) -> redis.Redis:
    validate_url(url, setting)
    options = _pool_options()
    # Connections that honour TASKQ_PUBLISH_TIMEOUT's deadline (broker/deadline.py);
    # without a deadline they are redis-py's own.
    options["connection_class"] = connection_class_for(url, options.get("connection_class"))
    return redis.Redis.from_url(url, **options)


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
                client = _from_url(str(taskq_settings.BROKER_URL), "TASKQ_BROKER_URL")
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
                client = _from_url(str(url), "TASKQ_RESULT_BACKEND")
                _clients["backend"] = client
    return client


def backend_is_broker() -> bool:
    """True when results and queues share one Redis (one round trip for both)."""
    return not taskq_settings.RESULT_BACKEND


def new_client() -> redis.Redis:
    """A client with a pool of its own (for blocking reads and pub/sub)."""
    broker = get_broker()
    kwargs = dict(broker.connection_pool.connection_kwargs)
    pool = redis.ConnectionPool(connection_class=broker.connection_pool.connection_class, **kwargs)
    return redis.Redis(connection_pool=pool)


def reset() -> None:
    """Drop cached clients (after a settings change or in a forked child)."""
    with _lock:
        for client in _clients.values():
            try:
                client.connection_pool.disconnect()
            except Exception:
                pass
        _clients.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """A changed broker setting (``override_settings`` in tests) takes effect at once."""
    if affects_taskq(setting):
        reset()
