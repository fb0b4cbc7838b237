"""End to end with the recorder: real workers write the rows the admin shows and acts on.

The other tests of this package make rows with the ORM; these let a real
worker (which runs the recorder by default) write them from the task
events, so they check that the admin reads what the recorder writes: the
kept message a retry sends again, the ``retry_of`` link, progress meta,
a periodic task's runs. They skip until the recorder
(``django_taskq.history.recorder``) is in the tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from django.urls import reverse

from django_taskq.history.models import TaskRecord
from django_taskq.models import IntervalSchedule, PeriodicTask
from tests.testapp.tasks import fail, progress

pytest.importorskip("django_taskq.history.recorder", reason="needs the history recorder")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

T = TypeVar("T")
HISTORY = reverse("admin:django_taskq_taskrecord_changelist")


def recorded(find: Callable[[], T | None], timeout: float = 30) -> T:
    """Wait until the recorder has written what ``find`` looks for (it reads the database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the recorder did not write it within {timeout} s")


def change_url(record: TaskRecord) -> str:
    return reverse("admin:django_taskq_taskrecord_change", args=[record.pk])


def test_retry_a_recorded_failure(admin_client: Any, start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = fail.delay("declined")
    with pytest.raises(ValueError, match="declined"):
        result.get(timeout=20)
    old = recorded(lambda: TaskRecord.objects.filter(task_id=result.id, state="FAILURE").first())
    assert old.body and old.traceback.rstrip().endswith("ValueError: declined")

    response = admin_client.post(
        HISTORY, {"action": "retry_tasks", "_selected_action": [old.pk]}, follow=True
    )
    assert "Sent 1 task again as a new task:" in response.content.decode()
    new = recorded(lambda: TaskRecord.objects.filter(retry_of=old.task_id, state="FAILURE").first())
    assert (new.task_name, new.args) == (old.task_name, old.args)
    # Each row links to the other, and the message's link opens the new row.
    assert new.task_id in admin_client.get(change_url(old)).content.decode()
    assert old.task_id in admin_client.get(change_url(new)).content.decode()
    link = reverse("admin:django_taskq_taskrecord_by_task_id", args=[new.task_id])
    assert admin_client.get(link)["location"] == change_url(new)


def test_retry_a_recorded_msgpack_zlib_failure(
    admin_client: Any, start_worker: Any, settings: Any
) -> None:
    settings.TASKQ_COMPRESSION_MIN_SIZE = 0  # compress however small
    start_worker("-P", "solo", env={"TASKQ_TEST_ACCEPT_CONTENT": "json,msgpack,zlib"})
    result = fail.apply_async(("declined",), serializer="msgpack", compression="zlib")
    with pytest.raises(ValueError, match="declined"):
        result.get(timeout=20)
    old = recorded(lambda: TaskRecord.objects.filter(task_id=result.id, state="FAILURE").first())
    assert old.body.startswith("base64:")  # kept, as text that gives the bytes back
    assert (
        "Sent as msgpack+zlib; shown decoded." in admin_client.get(change_url(old)).content.decode()
    )

    response = admin_client.post(
        HISTORY, {"action": "retry_tasks", "_selected_action": [old.pk]}, follow=True
    )
    assert "Sent 1 task again as a new task:" in response.content.decode()
    new = recorded(lambda: TaskRecord.objects.filter(retry_of=old.task_id, state="FAILURE").first())
    assert (new.task_name, new.args, new.exception_message) == (
        old.task_name,
        old.args,
        "declined",
    )
    assert new.body.startswith("base64:")


def test_progress_of_a_running_task(admin_client: Any, start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    result = progress.delay(4, "progress-steps")
    row = recorded(lambda: TaskRecord.objects.filter(task_id=result.id, progress__done=1).first())
    content = admin_client.get(change_url(row)).content.decode()
    assert '<progress max="1000" value="250">1 / 4 (25%)</progress>' in content
    for _ in range(4):
        broker.rpush("progress-steps", "go")
    assert result.get(timeout=20) == 4
    done = recorded(lambda: TaskRecord.objects.filter(task_id=result.id, state="SUCCESS").first())
    assert "<progress" not in admin_client.get(change_url(done)).content.decode()


def test_run_now_and_the_periodic_task_list(admin_client: Any, start_worker: Any) -> None:
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    task = PeriodicTask.objects.create(
        name="misspelt", task="tests.testapp.tasks.no_such_task", interval=hourly
    )
    start_worker("-P", "solo")
    periodic = reverse("admin:django_taskq_periodictask_changelist")
    admin_client.post(periodic, {"action": "run_now", "_selected_action": [task.pk]})
    run = recorded(
        lambda: TaskRecord.objects.filter(periodic_task_name="misspelt", dead_lettered=True).first()
    )
    content = admin_client.get(periodic).content.decode()
    assert f'<a href="{change_url(run)}" class="taskq-last-run">' in content
    assert "DEAD-LETTERED" in content
    assert 'title="1 failed, revoked or dead-lettered run in the last 24 hours"' in content
