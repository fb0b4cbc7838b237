"""``manage.py check`` messages for misconfiguration, each with an id.

- taskq.E001 a broker or result URL that is not a Redis URL
- taskq.E002 TASKQ_REDIS_CACHE_ALIAS names no cache
- taskq.W001 an unknown TASKQ_* setting (with the closest known name)
- taskq.W002 pickle accepted (TASKQ_ACCEPT_CONTENT): unsafe with untrusted Redis
- taskq.E003 a setting of the wrong type or range (an unknown serializer or
  compression among them; the plain settings' rules are in settings_types.py)
- taskq.E004 connection settings that cannot work together (broker/checks.py)
- taskq.W003 metrics configured (TASKQ_METRICS_TOKEN, or the taskq-metrics URL
  routed) while prometheus_client is not installed
- taskq.W004 TASKQ_METRICS_TOKEN set but empty: scraping is open
- taskq.W005 a Celery setting (CELERY_*) left behind, with what replaces it
- taskq.E005 a TASKQ_BEAT_SCHEDULE entry that cannot be read, or whose
  arguments its task cannot take
- taskq.W006 a TASKQ_BEAT_SCHEDULE entry naming no task this project defines
- taskq.E006 a serializer or compression named in a setting whose library is
  not installed (msgpack, zstandard)
- taskq.W007 TASKQ_TASK_SERIALIZER or TASKQ_COMPRESSION not in
  TASKQ_ACCEPT_CONTENT: workers with these settings refuse what is sent
- taskq.E007 OPTIONS of a TaskqBackend in TASKS that are no django_taskq
  setting (django-tasks-redis's, with their replacement), or that contradict
  a TASKQ_* setting or another alias (backend_options.py)
- taskq.E008 TASKQ_AUTH_HANDLERS that cannot be loaded (not importable, a
  dict without HANDLER, an unknown endpoint name), found at deploy time
  rather than at the first call of an endpoint
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from django_taskq import settings_types
from django_taskq.conf import DEFAULTS, PREFIX, check_async_concurrency


@register("django_taskq")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    known = set(DEFAULTS)
    for name in dir(settings):
        if not name.startswith(PREFIX) or name.startswith("TASKQ_TEST_"):
            continue
        short = name[len(PREFIX) :]
        if short not in known:
            close = difflib.get_close_matches(short, known, n=1)
            hint = f"Did you mean {PREFIX}{close[0]}?" if close else "See docs/settings.md."
            messages.append(
                Warning(f"{name} is not a django_taskq setting.", hint=hint, id="taskq.W001")
            )

    from django_taskq.broker.connection import validate_url

    for setting in ("BROKER_URL", "RESULT_BACKEND"):
        value = getattr(settings, PREFIX + setting, None)
        if value:
            try:
                validate_url(str(value), PREFIX + setting)
            except Exception as exc:
                messages.append(Error(str(exc), id="taskq.E001"))
    from django_taskq.broker.checks import topology_messages

    messages += topology_messages(settings)
    alias = getattr(settings, PREFIX + "REDIS_CACHE_ALIAS", None)
    if alias and alias not in settings.CACHES:
        messages.append(
            Error(
                f"TASKQ_REDIS_CACHE_ALIAS={alias!r} names no cache in CACHES.",
                hint=f"Known caches: {', '.join(settings.CACHES) or 'none'}.",
                id="taskq.E002",
            )
        )
    messages += _check_codecs()
    priority = getattr(settings, PREFIX + "DEFAULT_PRIORITY", 5)
    if not isinstance(priority, int) or not 0 <= priority <= 9:
        messages.append(
            Error(
                f"TASKQ_DEFAULT_PRIORITY={priority!r} must be an integer from 0 to 9.",
                id="taskq.E003",
            )
        )
    publish_timeout = getattr(settings, PREFIX + "PUBLISH_TIMEOUT", 5.0)
    number = isinstance(publish_timeout, int | float) and not isinstance(publish_timeout, bool)
    if not number or publish_timeout <= 0:
        messages.append(
            Error(
                f"TASKQ_PUBLISH_TIMEOUT={publish_timeout!r} must be a number of seconds > 0.",
                hint="It bounds a whole delay() call, retries included (default 5.0).",
                id="taskq.E003",
            )
        )
    messages += [
        Error(problem, hint="See docs/settings.md.", id="taskq.E003")
        for problem in settings_types.problems()
    ]
    messages += _check_tasks_options()
    messages += _check_metrics()
    messages += _check_send_ahead()
    messages += _check_celery_settings()
    messages += _check_beat_schedule()
    messages += _check_endpoints()
    timeout = getattr(settings, PREFIX + "WORKER_HEARTBEAT_TIMEOUT", 30)
    if not isinstance(timeout, int | float) or timeout < 1:
        messages.append(
            Error(
                f"TASKQ_WORKER_HEARTBEAT_TIMEOUT={timeout!r} must be a number of seconds >= 1.",
                id="taskq.E003",
            )
        )
    try:
        check_async_concurrency(
            getattr(settings, PREFIX + "WORKER_ASYNC_CONCURRENCY", 1),
            PREFIX + "WORKER_ASYNC_CONCURRENCY",
        )
    except ImproperlyConfigured as exc:
        messages.append(Error(str(exc), id="taskq.E003"))
    return messages


def _check_endpoints() -> list[CheckMessage]:
    """taskq.E008 for TASKQ_AUTH_HANDLERS, E003 for TASKQ_ENDPOINT_RUN_TIMEOUT."""
    from django_taskq.conf import taskq_settings
    from django_taskq.endpoints.auth import handlers

    messages: list[CheckMessage] = []
    hint = "See docs/http-endpoints.md#who-may-call-them."
    try:
        handlers()
    except ImproperlyConfigured as exc:
        messages.append(Error(str(exc), hint=hint, id="taskq.E008"))
    timeout = taskq_settings.ENDPOINT_RUN_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        messages.append(
            Error(
                f"TASKQ_ENDPOINT_RUN_TIMEOUT={timeout!r} must be a number of seconds > 0.",
                hint="It bounds how long run/, run-one/ and execute/ wait (default 300).",
                id="taskq.E003",
            )
        )
    return messages


def _check_tasks_options() -> list[CheckMessage]:
    """taskq.E007 for TaskqBackend OPTIONS (backend_options.py), E001 for their URLs."""
    from django_taskq.backend_options import problems
    from django_taskq.broker.connection import validate_url
    from django_taskq.conf import tasks_options

    messages: list[CheckMessage] = []
    hint = "See docs/django-tasks.md#configuring-it-in-tasks."
    for alias, options in tasks_options():
        messages += [Error(text, hint=hint, id="taskq.E007") for text in problems(alias, options)]
        for name in ("BROKER_URL", "RESULT_BACKEND"):
            if options.get(name):
                try:
                    validate_url(str(options[name]), f"TASKS[{alias!r}]['OPTIONS'][{name!r}]")
                except Exception as exc:
                    messages.append(Error(str(exc), id="taskq.E001"))
    return messages


def _check_codecs() -> list[CheckMessage]:
    """Serializers and compressions: known names, installed libraries, accepted by workers."""
    from django_taskq import codecs

    messages: list[CheckMessage] = []
    accept = getattr(settings, PREFIX + "ACCEPT_CONTENT", ["json"])
    if isinstance(accept, str) or not isinstance(accept, list | tuple | set | frozenset):
        return [
            Error(
                f"TASKQ_ACCEPT_CONTENT={accept!r} must be a list of content types.",
                hint='For example ["json"] (the default) or ["json", "msgpack", "zlib"].',
                id="taskq.E003",
            )
        ]
    accept = list(accept)
    serializer = getattr(settings, PREFIX + "TASK_SERIALIZER", "json")
    if "pickle" in accept or serializer == "pickle":
        messages.append(
            Warning(
                "TASKQ_ACCEPT_CONTENT accepts pickle: anyone who can write to your Redis can run "
                "code in your workers.",
                hint="Use JSON (the default) or msgpack unless Redis is fully trusted.",
                id="taskq.W002",
            )
        )
    unknown_content = [c for c in accept if c not in codecs.CONTENT]
    if unknown_content:
        messages.append(
            Error(
                f"TASKQ_ACCEPT_CONTENT has unknown content type(s) {unknown_content}.",
                hint="List serializers ('json', 'msgpack', 'pickle') and compressions "
                "('zlib', 'zstd').",
                id="taskq.E003",
            )
        )
    chosen = {"TASK_SERIALIZER": serializer}
    for name in ("COMPRESSION", "RESULT_COMPRESSION"):
        chosen[name] = getattr(settings, PREFIX + name, None)
    for name, value in chosen.items():
        try:
            codecs.check_option(
                PREFIX + name, "serializer" if name == "TASK_SERIALIZER" else name.lower(), value
            )
        except ValueError as exc:
            messages.append(Error(str(exc), id="taskq.E003"))
    named = [(PREFIX + "ACCEPT_CONTENT", c) for c in accept]
    named += [(PREFIX + name, value) for name, value in chosen.items()]
    for setting, codec in named:
        if codec in codecs.OPTIONAL and codecs.missing(codec):
            messages.append(
                Error(
                    f"{setting} names {codec!r}, which {codecs.needs(codec)}.",
                    id="taskq.E006",
                )
            )
    sent = [("TASK_SERIALIZER", serializer), ("COMPRESSION", chosen["COMPRESSION"])]
    for name, codec in sent:
        if codec in codecs.CONTENT and codec != "json" and codec not in accept:
            messages.append(
                Warning(
                    f"{PREFIX}{name}={codec!r} but TASKQ_ACCEPT_CONTENT={accept!r}: workers "
                    "with these settings dead-letter the messages this project sends.",
                    hint=f"Add {codec!r} to TASKQ_ACCEPT_CONTENT (workers decode what it lists).",
                    id="taskq.W007",
                )
            )
    return messages


def _check_celery_settings() -> list[CheckMessage]:
    """Celery settings left behind: django_taskq never reads them (taskq.W005)."""
    from django_taskq import celery_names

    return [
        Warning(
            f"{name} is a Celery setting; django_taskq does not read it.",
            hint=celery_names.hint(name),
            id="taskq.W005",
        )
        for name in sorted(dir(settings))
        if celery_names.is_celery_setting(name)
    ]


def _check_beat_schedule() -> list[CheckMessage]:
    """TASKQ_BEAT_SCHEDULE: well-formed entries, calling known tasks with arguments they take.

    Checked here, so ``manage.py check`` and ``taskq_beat``'s start say it,
    not an ERROR at every run. An entry that cannot be read, or whose
    arguments its task cannot take, is an error (taskq.E005); a task name
    this project does not define is a warning (taskq.W006): its workers may
    run code this project does not import.
    """
    from django.core.exceptions import ImproperlyConfigured

    from django_taskq.arguments import task_call_error
    from django_taskq.beat.sync import parse
    from django_taskq.registry import registry

    schedule = getattr(settings, PREFIX + "BEAT_SCHEDULE", None)
    if not schedule:
        return []
    try:
        entries = parse(schedule)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="taskq.E005")]
    messages: list[CheckMessage] = []
    for entry in entries:
        where = f"TASKQ_BEAT_SCHEDULE[{entry.name!r}]"
        if entry.task not in registry:
            close = difflib.get_close_matches(entry.task, list(registry), n=1)
            messages.append(
                Warning(
                    f"{where}: no task named {entry.task!r} is defined in this project; "
                    "every run would be dead-lettered unless the workers define it.",
                    hint=f"Did you mean {close[0]!r}?"
                    if close
                    else "Check the name (Task.name: the module path and the function name).",
                    id="taskq.W006",
                )
            )
            continue
        problem = task_call_error(entry.task, entry.values["args"], entry.values["kwargs"])
        if problem:
            messages.append(
                Error(
                    f"{where}: {problem}",
                    hint="Fix its 'args' and 'kwargs' to match the task's parameters.",
                    id="taskq.E005",
                )
            )
    return messages


def _check_send_ahead() -> list[CheckMessage]:
    """TASKQ_BEAT_SEND_AHEAD: seconds from 0 to 60, well under TASKQ_BEAT_RUN_KEY_TTL."""
    from django.core.exceptions import ImproperlyConfigured

    from django_taskq.beat.ahead import send_ahead_seconds

    try:
        send_ahead_seconds()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="taskq.E003")]
    return []


def _check_metrics() -> list[CheckMessage]:
    """Warn when metrics are set up without prometheus_client, or left open by mistake."""
    from django_taskq.metrics.exposition import MISSING, available

    token = getattr(settings, PREFIX + "METRICS_TOKEN", None)
    if token is not None and not str(token).strip():
        return [
            Warning(
                "TASKQ_METRICS_TOKEN is set but empty, so anyone can scrape the metrics.",
                hint="Set it to a secret (e.g. from the environment), or to None to mean open.",
                id="taskq.W004",
            )
        ]
    if available():
        return []
    routed = False
    try:
        from django.urls import reverse

        reverse("taskq-metrics")
        routed = True
    except Exception:  # not routed, or a broken URLconf (Django's own checks say so)
        pass
    if not routed and not getattr(settings, PREFIX + "METRICS_TOKEN", None):
        return []
    return [
        Warning(
            MISSING + ".",
            hint="Without it the taskq-metrics view and taskq_worker --metrics-port fail.",
            id="taskq.W003",
        )
    ]
