"""A task only the workers of tests/history_admin/worker_only_settings.py register."""

from __future__ import annotations

from django_taskq import shared_task


@shared_task(name="tests.history_admin.workeronly.tasks.only_on_workers")
def only_on_workers() -> str:
    return "ran"
