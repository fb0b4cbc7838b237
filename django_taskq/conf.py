"""Every ``TASKQ_*`` setting, its default, and one cached accessor.

Settings are flat names in the Django settings module. ``taskq_settings.NAME``
reads ``settings.TASKQ_NAME``, else ``NAME`` in the ``OPTIONS`` of a ``TASKS``
backend that is ``TaskqBackend`` (so a project on Django's tasks framework
can configure everything in ``TASKS``; backend_options.py checks them), else
the default below. The cache is dropped on Django's ``setting_changed``
signal so ``override_settings`` works in tests. Nothing here connects to
anything or reads settings at import time.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

PREFIX = "TASKQ_"

#: name (without the TASKQ_ prefix) -> default value
DEFAULTS: dict[str, Any] = {
    # --- connection -------------------------------------------------------
    # redis:// or rediss:// URL of the broker. None: use TASKQ_REDIS_CACHE_ALIAS
    # if set, else redis://127.0.0.1:6379/0.
    "BROKER_URL": None,
    # Name of a django-redis cache in CACHES whose connection pool is reused.
    "REDIS_CACHE_ALIAS": None,
    # Redis URL for results when they must live elsewhere; None: the broker.
    "RESULT_BACKEND": None,
    # Every Redis key starts with this, so two projects can share one Redis.
    "KEY_PREFIX": "taskq",
    # Extra keyword arguments for redis.Redis / ConnectionPool.from_url.
    "BROKER_CONNECTION_OPTIONS": {},
    "BROKER_SOCKET_TIMEOUT": 10.0,
    "BROKER_CONNECT_TIMEOUT": 3.0,
    # How delay() retries while Redis is unreachable before BrokerUnavailable.
    "PUBLISH_RETRY": {
        "max_retries": 3,
        "interval_start": 0.1,
        "interval_step": 0.2,
        "interval_max": 1.0,
    },
    # Seconds a send (delay(), apply_async(), delay_many(), a workflow) may
    # take in all, retries and their waits included, before BrokerUnavailable.
    "PUBLISH_TIMEOUT": 5.0,
    # --- replication (Sentinel, Cluster; broker/durability.py) -------------
    # Replicas that must have a write before a send or a worker's flush
    # counts as done (WAIT); 0: Redis's asynchronous replication as it is.
    "BROKER_MIN_REPLICAS": 0,
    # Seconds to wait for them before the write is retried (then
    # BrokerUnavailable for a send).
    "BROKER_REPLICA_TIMEOUT": 1.0,
    # --- tasks and calling ------------------------------------------------
    "DEFAULT_QUEUE": "default",
    "DEFAULT_PRIORITY": 5,
    # Task name or glob -> queue name, or -> {"queue": ..., "priority": ...}.
    "ROUTES": {},
    "TASK_ALWAYS_EAGER": False,
    "TASK_EAGER_PROPAGATES": False,
    "TASK_DEFAULT_MAX_RETRIES": 3,
    "TASK_DEFAULT_RETRY_DELAY": 180.0,
    "TASK_TIME_LIMIT": None,
    "TASK_SOFT_TIME_LIMIT": None,
    "TASK_ACKS_LATE": True,
    "TASK_TRACK_STARTED": False,
    "TASK_IGNORE_RESULT": False,
    # What a worker decodes: serializers ("json" always; "msgpack", "pickle")
    # and compressions ("zlib", "zstd"); anything else is dead-lettered.
    "ACCEPT_CONTENT": ["json"],
    # Serializer of messages: "json", "msgpack" (extra [msgpack]) or "pickle".
    "TASK_SERIALIZER": "json",
    # Compression of message bodies: None, "zlib" or "zstd" (extra [zstd]).
    "COMPRESSION": None,
    # Bodies and result values shorter than this (bytes) are not compressed.
    "COMPRESSION_MIN_SIZE": 1024,
    # --- results ----------------------------------------------------------
    # Seconds a result is kept (default one day).
    "RESULT_EXPIRES": 86400,
    # Compression of successful tasks' result values: None, "zlib" or "zstd".
    "RESULT_COMPRESSION": None,
    # --- worker -----------------------------------------------------------
    "WORKER_CONCURRENCY": None,
    "WORKER_POOL": "prefork",
    # Upper bound of messages one consumer fetches at once. The batch only
    # grows towards it while a batch runs in under ~50 ms, and unstarted
    # messages are handed back when one task runs long.
    "WORKER_PREFETCH": 256,
    "WORKER_MAX_TASKS_PER_CHILD": None,
    # async def tasks one consumer (a prefork child, a thread, the solo
    # worker) runs at once on its event loop (worker/lane.py); 1 runs them
    # one at a time, like every other task. taskq_worker --async-concurrency.
    "WORKER_ASYNC_CONCURRENCY": 1,
    # revoke(terminate=True, signal="SIGTERM") in the prefork pool: a child
    # still running the task this many seconds after the signal is killed.
    "WORKER_TERMINATE_GRACE": 10.0,
    "WORKER_MAX_MEMORY_PER_CHILD": None,
    # A consumer whose heartbeat is older than this is dead; its messages are
    # redelivered. Must be well above the heartbeat interval (timeout / 3).
    "WORKER_HEARTBEAT_TIMEOUT": 30.0,
    # A worker that stopped beating is shown as offline, then forgotten after this.
    "WORKER_FORGET_AFTER": 86400.0,
    # Seconds taskq_inspect / taskq_control (and django_taskq.control's remote
    # calls) wait for the workers' replies before naming those that did not reply.
    "CONTROL_TIMEOUT": 2.0,
    # A queue that is empty, unconsumed and unwritten for this long is forgotten.
    "QUEUE_FORGET_AFTER": 86400.0,
    # A message delivered this many times without finishing is dead-lettered.
    "MAX_DELIVERIES": 5,
    # How many dead letters are kept (oldest trimmed first).
    "DEAD_LETTER_MAXLEN": 10000,
    # --- metrics ----------------------------------------------------------
    # Bearer token Prometheus must send to scrape the taskq-metrics view and
    # taskq_worker --metrics-port (Authorization: Bearer <token>). None: open.
    "METRICS_TOKEN": None,
    # --- HTTP endpoints (django_taskq.endpoints.urls) -----------------------
    # Who may call run/, run-one/, execute/, status/ and purge/: dotted paths (or
    # callables, or {"HANDLER", "OPTIONS", "ENDPOINTS"} dicts) of handlers
    # that take the request and return None to accept it. Empty: every
    # endpoint answers 403, so nothing is open until a project says how.
    "AUTH_HANDLERS": [],
    # OPTIONS given to every handler in AUTH_HANDLERS (a dict entry adds its own).
    "AUTH_HANDLER_OPTIONS": {},
    # Seconds run/, run-one/ and execute/ let their burst worker run before stopping it
    # (warm, then cold: nothing is lost, an interrupted task runs again later).
    "ENDPOINT_RUN_TIMEOUT": 300.0,
    # --- beat -------------------------------------------------------------
    "TIMEZONE": None,
    "BEAT_SCHEDULE": {},
    "BEAT_LEASE_SECONDS": 10.0,
    "BEAT_MAX_STALENESS": None,
    "BEAT_VERSION_POLL_SECONDS": 5.0,
    # Seconds a run key (periodic task + due time) is kept in Redis; it only
    # has to outlive two beats briefly believing they lead.
    "BEAT_RUN_KEY_TTL": 3600,
    # Seconds before its due time that the beat leader sends a run, as an ETA
    # message promoted into its stream at the due time (so a burst of runs
    # due at one instant is on time); 0 sends each run when it is due.
    "BEAT_SEND_AHEAD": 5.0,
    # --- history recorder (history/recorder.py) ---------------------------
    # Workers run the history recorder (one records at a time, by a lease).
    "HISTORY": True,
    # Days history rows are kept (by send time); None keeps them all.
    "HISTORY_RETENTION": 30,
    # Rows kept at most (the oldest go first); None for no cap.
    "HISTORY_MAX_ROWS": 1_000_000,
    # Events the recorder reads and writes per batch, about (per queue; a
    # read takes as many entries as held that many events last time).
    "HISTORY_BATCH": 2000,
    # --- task events ------------------------------------------------------
    # Write task events (sent, started, progress, succeeded, ...) to each
    # queue's capped events stream, in the writes producers and workers
    # make anyway (events.py); the history recorder reads them.
    "EVENTS": True,
    # About how many entries each queue's events stream keeps (MAXLEN ~);
    # an entry holds up to 128 events of one worker flush.
    "EVENTS_MAXLEN": 100_000,
    # Longest repr of args, kwargs and results kept in an event (characters).
    "HISTORY_REPR_LIMIT": 1000,
    # Longest message body kept in a ``sent`` event, in characters of its
    # text (bodies.to_text: msgpack and compressed bodies in base64); a
    # longer one, or a pickled one, is left out.
    "HISTORY_BODY_LIMIT": 16384,
    # Keep the Prometheus task counters and histograms in Redis (written
    # by enqueue.lua and each worker flush). Independent of TASKQ_EVENTS.
    "METRICS": True,
}


#: The ``BACKEND`` of a ``TASKS`` entry whose ``OPTIONS`` hold django_taskq settings.
TASKQ_BACKEND = "django_taskq.backends.TaskqBackend"

_UNSET = object()


def tasks_options() -> list[tuple[str, dict[str, Any]]]:
    """(alias, OPTIONS) of every ``TASKS`` entry that is ``TaskqBackend`` or a subclass of it.

    A BACKEND path other than TaskqBackend's own is imported to tell (a
    project's subclass); one that does not import is not ours, and Django's
    tasks framework reports it.
    """
    from django.conf import settings

    found = []
    for alias, config in (getattr(settings, "TASKS", None) or {}).items():
        if not isinstance(config, dict):
            continue
        path = config.get("BACKEND")
        if path != TASKQ_BACKEND and not _is_taskq_backend(path):
            continue
        options = config.get("OPTIONS") or {}
        found.append((str(alias), options if isinstance(options, dict) else {}))
    return found


def _is_taskq_backend(path: object) -> bool:
    if not isinstance(path, str) or "." not in path:
        return False
    from django.utils.module_loading import import_string

    try:
        found = import_string(path)
        from django_taskq.backends import TaskqBackend
    except ImportError:
        return False

    return isinstance(found, type) and issubclass(found, TaskqBackend)


class Settings:
    """Read ``TASKQ_*`` settings lazily, with the defaults above.

    A value read once is kept as an attribute of the instance, so later
    reads are plain attribute lookups that never reach ``__getattr__``:
    ``delay()`` reads a few dozen settings, and on that path each
    ``__getattr__`` call cost about half a microsecond. ``reload()`` drops
    them, on Django's ``setting_changed`` signal.
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._origins: dict[str, str] = {}
        self._options: list[tuple[str, dict[str, Any]]] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"unknown django_taskq setting {PREFIX}{name}")
        try:
            return self._cache[name]
        except KeyError:
            pass
        from django.conf import settings

        value = getattr(settings, PREFIX + name, _UNSET)
        origin = PREFIX + name
        if value is _UNSET:
            value = DEFAULTS[name]
            if self._options is None:
                self._options = tasks_options()
            for alias, options in self._options:
                if name in options:
                    value = options[name]
                    origin = f"TASKS[{alias!r}]['OPTIONS'][{name!r}]"
                    break
        self._cache[name] = value
        self._origins[name] = origin
        self.__dict__[name] = value  # the next read finds it without __getattr__
        return value

    def origin(self, name: str) -> str:
        """Where ``name``'s value comes from, for error messages.

        ``TASKQ_BROKER_URL``, or ``TASKS['default']['OPTIONS']['BROKER_URL']``
        when a TaskqBackend's OPTIONS give it.
        """
        getattr(self, name)
        return self._origins[name]

    def reload(self) -> None:
        """Forget cached values so the next read sees current settings."""
        for name in list(self._cache):
            self.__dict__.pop(name, None)
        self._cache.clear()
        self._origins.clear()
        self._options = None

    @property
    def concurrency(self) -> int:
        """Worker concurrency: the setting, else the number of CPUs."""
        value = self.WORKER_CONCURRENCY
        return int(value) if value else (os.cpu_count() or 1)

    @property
    def async_concurrency(self) -> int:
        """TASKQ_WORKER_ASYNC_CONCURRENCY, checked (a positive whole number)."""
        return check_async_concurrency(
            self.WORKER_ASYNC_CONCURRENCY, f"{PREFIX}WORKER_ASYNC_CONCURRENCY"
        )


def check_async_concurrency(value: Any, where: str) -> int:
    """``value`` as a number of async tasks a consumer runs at once; an error naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        from django_taskq.exceptions import ImproperlyConfiguredTaskq

        raise ImproperlyConfiguredTaskq(
            f"{where} must be a whole number of async def tasks one consumer runs at once, "
            f"1 or more (1: one at a time), not {value!r}"
        )
    return value


taskq_settings = Settings()


def affects_taskq(setting: str) -> bool:
    """True for settings whose change must drop what was derived from them."""
    return setting.startswith(PREFIX) or setting in {"CACHES", "TIME_ZONE", "TASKS"}


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if affects_taskq(setting):
        taskq_settings.reload()
