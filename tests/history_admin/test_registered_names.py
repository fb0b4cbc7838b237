"""The periodic task admin knows the task names a real worker registered.

``django_taskq.beat.task_names.registered_by_workers`` reads them through
``django_taskq.monitor.workers.registered_task_names`` (the names workers
publish with their heartbeat).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.urls import reverse

from django_taskq.models import IntervalSchedule, PeriodicTask
from django_taskq.monitor import workers
from django_taskq.registry import registry

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ONLY_ON_WORKERS = "tests.history_admin.workeronly.tasks.only_on_workers"
ADD = reverse("admin:django_taskq_periodictask_add")


def test_a_name_only_a_worker_registered_is_accepted(admin_client: Any, start_worker: Any) -> None:
    assert ONLY_ON_WORKERS not in registry  # the web process (this test) does not know it
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    data = {
        "name": "worker-only",
        "task": ONLY_ON_WORKERS,
        "enabled": "on",
        "interval": hourly.pk,
        "args": "[]",
        "kwargs": "{}",
        "headers": "{}",
    }
    refused = admin_client.post(ADD, data)
    assert "No worker has registered a task named" in refused.content.decode()

    start_worker(
        "-P", "solo", env={"DJANGO_SETTINGS_MODULE": "tests.history_admin.worker_only_settings"}
    )
    deadline = time.monotonic() + 15
    while ONLY_ON_WORKERS not in workers.registered_task_names():
        assert time.monotonic() < deadline, "the worker did not publish its task names"
        time.sleep(0.05)
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert PeriodicTask.objects.filter(task=ONLY_ON_WORKERS).exists()
