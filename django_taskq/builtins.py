"""Internal tasks the workflows need: map, starmap, and collect.

Registered under ``django_taskq.*`` names (hidden from task listings by
default); the app config imports this module in every process.
"""

from __future__ import annotations

from typing import Any

from django_taskq.canvas import signature
from django_taskq.task import shared_task


@shared_task(name="django_taskq.xmap")
def xmap(task: dict[str, Any], it: list[Any]) -> list[Any]:
    """Call ``task`` inline once per item of ``it``; return the results in order."""
    sig = signature(task)
    return [sig(item) for item in it]


@shared_task(name="django_taskq.xstarmap")
def xstarmap(task: dict[str, Any], it: list[Any]) -> list[Any]:
    """Call ``task(*item)`` inline once per item of ``it``; return the results in order."""
    sig = signature(task)
    return [sig(*item) for item in it]


@shared_task(name="django_taskq.collect")
def collect(results: list[Any]) -> list[Any]:
    """Return a group's results as one value (a group made into a single chord member)."""
    return results
