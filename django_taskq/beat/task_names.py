"""Which task names exist, for the periodic task admin's check of a name.

A periodic task whose task name no worker knows is sent on schedule and
dead-lettered every time ("not registered"), while its run count grows. The
admin refuses such a name unless the user says it is intended, using:

- the names workers registered lately (they publish them with their
  heartbeat; ``django_taskq.monitor.workers.registered_task_names``);
- the names registered in this web process, asked first. They count too: the web
  process imports the same apps' ``tasks`` modules as the workers (Django
  autodiscovers them in both), so a name known here is real code, and it
  lets a project add periodic tasks before any worker has started (a first
  deploy, a development machine). A misspelt name is in neither.
"""

from __future__ import annotations

from django_taskq.registry import registry


def registered_by_workers() -> set[str]:
    """Task names the workers Redis remembers registered (BrokerUnavailable if unreadable)."""
    from django_taskq.monitor.workers import registered_task_names

    return registered_task_names()


def is_registered(name: str) -> bool:
    """Whether this process or a worker seen lately has registered ``name``.

    This process is asked first, so Redis is read only for names it does not
    know; BrokerUnavailable when Redis must be read and cannot be.
    """
    return name in registry or name in registered_by_workers()
