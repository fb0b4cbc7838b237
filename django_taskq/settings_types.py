"""The type and range of every plain ``TASKQ_*`` setting, checked at ``manage.py check``.

A setting of the wrong type used to pass the checks and fail later, far
from its cause: ``TASKQ_MAX_DELIVERIES = "5"`` in the worker's first
fetch, ``TASKQ_RESULT_EXPIRES = timedelta(days=1)`` (Celery's habit) in the
first flush, ``TASKQ_KEY_PREFIX = "a}b"`` by splitting every key's hash tag.
Each rule here names the setting, the value and what it must be; the
check (taskq.E003) reads the value where ``conf.taskq_settings`` does, so a
``TaskqBackend``'s ``OPTIONS`` in ``TASKS`` are checked too.

Settings with a check of their own elsewhere are not repeated here: URLs
(E001), codecs (E003/E006 in checks.py), ``TASKQ_BEAT_SCHEDULE`` (E005),
``TASKQ_AUTH_HANDLERS`` (E008), the replica settings (broker/checks.py),
``TASKQ_DEFAULT_PRIORITY``, ``TASKQ_PUBLISH_TIMEOUT``,
``TASKQ_WORKER_HEARTBEAT_TIMEOUT``, ``TASKQ_WORKER_ASYNC_CONCURRENCY``,
``TASKQ_ENDPOINT_RUN_TIMEOUT`` and ``TASKQ_BEAT_SEND_AHEAD``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

#: A rule: None when the value is right, else what it must be.
Rule = Callable[[Any], str | None]

_NAME = re.compile(r"^[^{}\s]{1,100}$")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def seconds(low: float, *, strict: bool = True, optional: bool = False) -> Rule:
    """A number of seconds above ``low`` (or at least it, without ``strict``), or None."""
    bound = f"> {low:g}" if strict else f">= {low:g}"
    want = f"a number of seconds {bound}" + (", or None" if optional else "")

    def rule(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, dt.timedelta):
            return f"{want} (write timedelta(...).total_seconds(), not a timedelta)"
        if not _is_number(value) or (value <= low if strict else value < low):
            return want
        return None

    return rule


def number(low: float, unit: str, *, optional: bool = False) -> Rule:
    """A number > ``low`` of ``unit``, or None when ``optional``."""
    want = f"a number of {unit} > {low:g}" + (", or None" if optional else "")

    def rule(value: Any) -> str | None:
        if value is None and optional:
            return None
        return None if _is_number(value) and value > low else want

    return rule


def whole(low: int, *, optional: bool = False, meaning: str = "") -> Rule:
    """An integer >= ``low``, or None when ``optional`` (``meaning`` says what None does)."""
    want = f"a whole number >= {low}" + (f", or None {meaning}".rstrip() if optional else "")

    def rule(value: Any) -> str | None:
        if value is None and optional:
            return None
        return None if _is_int(value) and value >= low else want

    return rule


def name(value: Any) -> str | None:
    if isinstance(value, str) and _NAME.match(value):
        return None
    return "a name of 1-100 characters without whitespace, '{' or '}'"


def one_of(*choices: str) -> Rule:
    def rule(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(repr(c) for c in choices)

    return rule


def text_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "a string, or None"


def time_zone(value: Any) -> str | None:
    """None (Django's TIME_ZONE) or an IANA time zone name that zoneinfo knows."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        return "an IANA time zone name such as 'Europe/Berlin', or None for TIME_ZONE"
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "a time zone name zoneinfo knows, such as 'Europe/Berlin' (is tzdata installed?)"
    return None


def options_dict(value: Any) -> str | None:
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return None
    return "a dict of keyword arguments (string keys) for redis-py's connection pool"


_RETRY_KEYS = {"max_retries", "interval_start", "interval_step", "interval_max"}


def publish_retry(value: Any) -> str | None:
    want = (
        'a dict like {"max_retries": 3, "interval_start": 0.1, "interval_step": 0.2, '
        '"interval_max": 1.0}'
    )
    if not isinstance(value, dict) or not set(value) <= _RETRY_KEYS:
        return want
    if "max_retries" in value and not (_is_int(value["max_retries"]) and value["max_retries"] >= 0):
        return want + " (max_retries a whole number >= 0)"
    for key in _RETRY_KEYS - {"max_retries"}:
        if key in value and not (_is_number(value[key]) and value[key] >= 0):
            return want + f" ({key} a number of seconds >= 0)"
    return None


def routes(value: Any) -> str | None:
    want = 'a dict of task name or glob -> queue name, or -> {"queue": ..., "priority": ...}'
    if not isinstance(value, dict):
        return want
    for pattern, target in value.items():
        if not isinstance(pattern, str):
            return want + f" (the key {pattern!r} is not a string)"
        if isinstance(target, str):
            if name(target) is not None:
                return want + f" ({pattern!r} routes to {target!r}, which is no queue name)"
            continue
        if not isinstance(target, dict) or not set(target) <= {"queue", "priority"}:
            return want + f" ({pattern!r} routes to {target!r})"
        if "queue" in target and name(target["queue"]) is not None:
            return want + f" ({pattern!r} routes to queue {target['queue']!r})"
        priority = target.get("priority")
        if priority is not None and not (_is_int(priority) and 0 <= priority <= 9):
            return want + f" ({pattern!r} has priority {priority!r}; 0 to 9)"
    return None


def handler_options(value: Any) -> str | None:
    return None if isinstance(value, dict) else "a dict of options given to every handler"


#: Setting (without TASKQ_) -> its rule.
RULES: dict[str, Rule] = {
    "KEY_PREFIX": name,
    "BROKER_CONNECTION_OPTIONS": options_dict,
    "BROKER_SOCKET_TIMEOUT": seconds(0, optional=True),
    "BROKER_CONNECT_TIMEOUT": seconds(0, optional=True),
    "PUBLISH_RETRY": publish_retry,
    "DEFAULT_QUEUE": name,
    "ROUTES": routes,
    "TASK_ALWAYS_EAGER": boolean,
    "TASK_EAGER_PROPAGATES": boolean,
    "TASK_DEFAULT_MAX_RETRIES": whole(0, optional=True, meaning="(no limit)"),
    "TASK_DEFAULT_RETRY_DELAY": seconds(0, strict=False),
    "TASK_TIME_LIMIT": seconds(0, optional=True),
    "TASK_SOFT_TIME_LIMIT": seconds(0, optional=True),
    "TASK_ACKS_LATE": boolean,
    "TASK_TRACK_STARTED": boolean,
    "TASK_IGNORE_RESULT": boolean,
    "COMPRESSION_MIN_SIZE": whole(0),
    "RESULT_EXPIRES": seconds(0),
    "WORKER_CONCURRENCY": whole(1, optional=True, meaning="(the number of CPUs)"),
    "WORKER_POOL": one_of("prefork", "threads", "solo"),
    "WORKER_PREFETCH": whole(1),
    "WORKER_MAX_TASKS_PER_CHILD": whole(1, optional=True, meaning="(no limit)"),
    "WORKER_TERMINATE_GRACE": seconds(0, strict=False),
    "WORKER_MAX_MEMORY_PER_CHILD": whole(1, optional=True, meaning="(no limit; in KiB)"),
    "WORKER_FORGET_AFTER": seconds(0),
    "CONTROL_TIMEOUT": seconds(0),
    "QUEUE_FORGET_AFTER": seconds(0),
    "MAX_DELIVERIES": whole(1),
    "DEAD_LETTER_MAXLEN": whole(1),
    "METRICS_TOKEN": text_or_none,
    "AUTH_HANDLER_OPTIONS": handler_options,
    "TIMEZONE": time_zone,
    "BEAT_LEASE_SECONDS": seconds(0),
    "BEAT_MAX_STALENESS": seconds(0, optional=True),
    "BEAT_VERSION_POLL_SECONDS": seconds(0),
    "BEAT_RUN_KEY_TTL": seconds(0),
    "HISTORY": boolean,
    "HISTORY_RETENTION": number(0, "days", optional=True),
    "HISTORY_MAX_ROWS": whole(1, optional=True, meaning="(no cap)"),
    "HISTORY_BATCH": whole(1),
    "EVENTS": boolean,
    "EVENTS_MAXLEN": whole(1),
    "HISTORY_REPR_LIMIT": whole(1),
    "HISTORY_BODY_LIMIT": whole(0),
    "METRICS": boolean,
}


def problems() -> list[str]:
    """One line per setting whose value breaks its rule, naming where the value comes from."""
    from django_taskq.conf import taskq_settings

    found = []
    for setting, rule in RULES.items():
        value = getattr(taskq_settings, setting)
        want = rule(value)
        if want is not None:
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            found.append(f"{taskq_settings.origin(setting)}={shown} must be {want}.")
    return found
