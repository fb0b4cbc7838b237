"""Where Django's tasks framework lives: ``django.tasks`` or the ``django-tasks`` backport.

Django 6.0 ships the framework as ``django.tasks``. On Django 5.2 the same
API comes from the ``django-tasks`` package (import name ``django_tasks``),
from which it was merged into Django. django_taskq's backend and bridge
(backends.py, django_tasks.py) import its parts through ``part()``, so one
code path serves both; ``django.tasks`` wins when both are installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _find() -> str | None:
    for name in ("django.tasks", "django_tasks"):
        try:
            importlib.import_module(f"{name}.backends.base")
        except ImportError:
            continue
        return name
    return None


#: The framework's package name, or None when neither is installed.
PACKAGE = _find()


def part(name: str) -> ModuleType:
    """The framework's module ``name`` ("base", "signals", "exceptions", "backends.base")."""
    if PACKAGE is None:
        raise ImportError(
            "Django's tasks framework is not installed: it is django.tasks on Django 6.0 or "
            "newer, and the django-tasks package on Django 5.2 (pip install django-tasks); "
            "or use @shared_task (docs/django-tasks.md)"
        )
    return importlib.import_module(f"{PACKAGE}.{name}")


def first(module: str, *names: str) -> object:
    """The first of ``names`` that the framework's ``module`` defines.

    For the few names the backport spells differently from Django
    (``InvalidTaskError`` there, ``InvalidTask`` in Django).
    """
    found = part(module)
    for name in names:
        if hasattr(found, name):
            return getattr(found, name)
    raise ImportError(f"{PACKAGE}.{module} defines none of {', '.join(names)}")


def normalize_json(value: object) -> object:
    """Django's ``normalize_json`` (django.utils.json on 6.0+, the backport's utils on 5.2)."""
    try:
        from django.utils.json import normalize_json as normalize
    except ImportError:
        normalize = part("utils").normalize_json
    return normalize(value)


__all__ = ["PACKAGE", "first", "normalize_json", "part"]
