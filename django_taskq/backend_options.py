"""The ``OPTIONS`` of a ``TaskqBackend`` in ``TASKS``: django_taskq settings, checked.

.. code-block:: python

    TASKS = {
        "default": {
            "BACKEND": "django_taskq.backends.TaskqBackend",
            "OPTIONS": {"BROKER_URL": "redis://127.0.0.1:6379/0", "RESULT_EXPIRES": 604800},
        }
    }

An option is a ``TASKQ_*`` setting without its prefix, and means what that
setting means (docs/settings.md); conf.py reads it when the ``TASKQ_*``
setting itself is not set. So a project on Django's tasks framework can keep
all of its task configuration in ``TASKS``, as its previous backend had it.

There is one broker, whatever the number of aliases: the options are the
process's settings, not the alias's. Hence the rules checked here, when the
backend is made (the first ``enqueue()``, and ``manage.py check``), so a
mistake fails at once rather than sending tasks somewhere unexpected:

- a name that is not a django_taskq setting is refused; a django-tasks-redis
  name is refused with what to write instead (tasks_redis_names.py);
- a name also set as ``TASKQ_<NAME>`` must have the same value there;
- two ``TaskqBackend`` aliases that both set a name must agree on it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_taskq.conf import DEFAULTS, PREFIX, tasks_options
from django_taskq.tasks_redis_names import advice

_UNSET = object()


def problems(alias: str, options: Any) -> list[str]:
    """What is wrong with the OPTIONS ``options`` of the TaskqBackend ``alias`` (empty: nothing)."""
    here = f"TASKS[{alias!r}]['OPTIONS']"
    if not isinstance(options, dict):
        return [f"{here} is a {type(options).__name__}; it must be a dict of django_taskq settings"]
    from django.conf import settings

    found = []
    others = [(a, o) for a, o in tasks_options() if a != alias]
    for name, value in options.items():
        where = f"{here}[{name!r}]"
        if not isinstance(name, str) or name not in DEFAULTS:
            why = advice(name) if isinstance(name, str) else None
            found.append(
                f"{where}: "
                + (
                    why
                    or f"not a django_taskq setting; OPTIONS take the {PREFIX}* settings "
                    f"without their prefix (BROKER_URL, RESULT_EXPIRES, ...; docs/settings.md)"
                )
            )
            continue
        setting = getattr(settings, PREFIX + name, _UNSET)
        if setting is not _UNSET and setting != value:
            found.append(
                f"{where} is {value!r} but {PREFIX}{name} is {setting!r}; "
                "they are the same setting: keep one of them"
            )
        for other, theirs in others:
            if name in theirs and theirs[name] != value:
                found.append(
                    f"{where} is {value!r} but TASKS[{other!r}]['OPTIONS'][{name!r}] is "
                    f"{theirs[name]!r}; every TaskqBackend alias shares one django_taskq "
                    "configuration (one broker): give them the same value, or set it once"
                )
    return found


def validate(alias: str, options: Any) -> None:
    """Raise ImproperlyConfigured listing every problem of these OPTIONS (see ``problems``)."""
    found = problems(alias, options)
    if found:
        raise ImproperlyConfigured(
            "; ".join(found) + " (docs/django-tasks.md#configuring-it-in-tasks)"
        )


__all__ = ["problems", "validate"]
