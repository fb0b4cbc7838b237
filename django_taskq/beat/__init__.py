"""Periodic tasks: the beat service, its scheduler and its leader lease.

``run_beat(stop, hostname=...)`` runs beat until ``stop`` is set; both
``taskq_beat`` and ``taskq_worker -B`` call it. ``schedule_changed()`` tells
the beat leader that periodic tasks changed behind the ORM's back.

Names are imported lazily so that importing this package does not load the
models before Django's app registry is ready.
"""

from __future__ import annotations

import threading


def run_beat(stop: threading.Event, *, hostname: str) -> None:
    """Run beat in this thread until ``stop`` is set (see ``service.Beat``)."""
    from django_taskq.beat.service import Beat

    Beat(hostname=hostname).run(stop)


def schedule_changed() -> None:
    """Tell beat that periodic tasks changed outside Django's signals (see ``version``)."""
    from django_taskq.beat.version import schedule_changed as bump

    bump()


__all__ = ["run_beat", "schedule_changed"]
