"""django-tasks-redis's backend OPTIONS, and what replaces each in ``TaskqBackend``'s.

A project moving from django-tasks-redis changes ``BACKEND`` and keeps its
``OPTIONS`` at first. ``TaskqBackend`` refuses an option it does not know
(backend_options.py), so a ``REDIS_URL`` left behind cannot silently send
every task to the default Redis; the error names the option to write
instead, from this table. It is the code form of the options table in
docs/migrating-from-django-tasks-redis.md; a test keeps the two the same.
"""

from __future__ import annotations

_URL = (
    "BROKER_URL, one URL holding host, port, database and password "
    "(redis://:password@host:6379/0; rediss:// for TLS)"
)

#: django-tasks-redis OPTIONS name -> what to write in TaskqBackend's OPTIONS instead.
REPLACEMENTS: dict[str, str] = {
    "REDIS_URL": "BROKER_URL",
    "REDIS_HOST": _URL,
    "REDIS_PORT": _URL,
    "REDIS_DB": _URL,
    "REDIS_PASSWORD": _URL,
    "REDIS_SSL": "BROKER_URL with the rediss:// scheme",
    "REDIS_SSL_CA_CERTS": 'BROKER_CONNECTION_OPTIONS = {"ssl_ca_certs": path}',
    "REDIS_SOCKET_TIMEOUT": "BROKER_SOCKET_TIMEOUT",
    "REDIS_SOCKET_CONNECT_TIMEOUT": "BROKER_CONNECT_TIMEOUT",
    "REDIS_SOCKET_KEEPALIVE": (
        'BROKER_CONNECTION_OPTIONS = {"socket_keepalive": ...} (on by default)'
    ),
    "REDIS_HEALTH_CHECK_INTERVAL": (
        'BROKER_CONNECTION_OPTIONS = {"health_check_interval": ...} (30 s by default)'
    ),
    "REDIS_RESULT_TTL": "RESULT_EXPIRES (seconds; default one day)",
    "REDIS_COMPLETED_TASK_TTL": "RESULT_EXPIRES (one TTL, renewed by every state the task enters)",
    "REDIS_KEY_PREFIX": "KEY_PREFIX",
    "REDIS_MAX_DELIVERIES": "MAX_DELIVERIES (then the message is dead-lettered)",
    "REDIS_CLAIM_TIMEOUT": (
        "WORKER_HEARTBEAT_TIMEOUT: a dead worker's messages come back once its "
        "heartbeat is this old, however long a live worker's task runs"
    ),
    "ENABLE_METRICS": "METRICS (on by default; docs/monitoring.md)",
    "AUTH_HANDLERS": "AUTH_HANDLERS (the same shape; handlers in django_taskq.endpoints.auth)",
    "AUTH_HANDLER_OPTIONS": "AUTH_HANDLER_OPTIONS (the same shape)",
}

#: django-tasks-redis OPTIONS name with nothing to replace it -> why.
NO_REPLACEMENT: dict[str, str] = {
    "REDIS_CONSUMER_GROUP": "django_taskq names its consumer groups itself; KEY_PREFIX "
    "keeps two projects on one Redis apart",
    "REDIS_BLOCK_TIMEOUT": "a worker's read blocks a second at a time and wakes at once "
    "for a message, so there is nothing to tune",
    "REDIS_SCAN_BATCH_SIZE": "the admin lists task history from the database "
    "(TaskRecord), not by scanning Redis",
}


def advice(name: str) -> str | None:
    """What to do about django-tasks-redis option ``name``; None for a name not theirs."""
    if name in REPLACEMENTS:
        return f"it is django-tasks-redis's; write {REPLACEMENTS[name]}"
    if name in NO_REPLACEMENT:
        why = NO_REPLACEMENT[name]
        return f"it is django-tasks-redis's and has no counterpart: {why}; remove it"
    return None


__all__ = ["NO_REPLACEMENT", "REPLACEMENTS", "advice"]
