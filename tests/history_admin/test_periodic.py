"""The periodic task admin's view of the history: last run, failures of the last 24 h, Run now."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_taskq.history.models import TaskRecord
from django_taskq.models import IntervalSchedule, PeriodicTask

from .conftest import make_record

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_taskq_periodictask_changelist")
HISTORY = reverse("admin:django_taskq_taskrecord_changelist")


@pytest.fixture
def hourly():
    return IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)


def record_url(record: TaskRecord) -> str:
    return reverse("admin:django_taskq_taskrecord_change", args=[record.pk])


def runs_of(name: str) -> None:
    """Six runs of ``name``: the newest dead-lettered, three failures within 24 h."""
    now = timezone.now()
    for hours, state, dead in (
        (30, "FAILURE", False),  # too old to count
        (20, "SUCCESS", False),
        (10, "FAILURE", False),
        (5, "REVOKED", False),
        (2, "SUCCESS", False),
    ):
        make_record(
            periodic_task_name=name,
            state=state,
            dead_lettered=dead,
            sent_at=now - dt.timedelta(hours=hours),
        )
    make_record(
        task_id=f"{name}-last",
        periodic_task_name=name,
        state="FAILURE",
        dead_lettered=True,
        sent_at=now - dt.timedelta(minutes=1),
    )


def test_list_shows_the_last_run_and_the_failures_of_24_hours(admin_client, hourly):
    PeriodicTask.objects.create(name="misspelt", task="tests.testapp.tasks.ad", interval=hourly)
    PeriodicTask.objects.create(name="never-ran", task="tests.testapp.tasks.add", interval=hourly)
    runs_of("misspelt")
    make_record(periodic_task_name="other", state="FAILURE")  # another task's run
    content = admin_client.get(CHANGELIST).content.decode()
    last = TaskRecord.objects.get(task_id="misspelt-last")
    assert (
        f'<a href="{record_url(last)}" class="taskq-last-run">'
        '<span class="taskq-badge taskq-badge-dead" title="FAILURE">DEAD-LETTERED</span></a>'
    ) in content
    assert 'class="taskq-failures" title="3 failed, revoked or dead-lettered runs' in content
    assert '<span class="taskq-failures-none">0</span>' in content  # never-ran


def test_failures_link_lists_exactly_those_runs(admin_client, hourly):
    PeriodicTask.objects.create(name="misspelt", task="x", interval=hourly)
    runs_of("misspelt")
    response = admin_client.get(CHANGELIST)
    task = response.context["cl"].result_list[0]
    assert task.failures_24h == 3
    from django_taskq.history.periodic import failures_url

    listed = admin_client.get(failures_url("misspelt"))
    assert listed.status_code == 200, listed.get("location")
    states = sorted((r.state, r.dead_lettered) for r in listed.context["cl"].result_list)
    assert states == [("FAILURE", False), ("FAILURE", True), ("REVOKED", False)]


def test_change_page_shows_them_too(admin_client, hourly):
    task = PeriodicTask.objects.create(name="misspelt", task="x", interval=hourly)
    fresh = PeriodicTask.objects.create(name="fresh", task="x", interval=hourly)
    runs_of("misspelt")
    url = reverse("admin:django_taskq_periodictask_change", args=[task.pk])
    content = admin_client.get(url).content.decode()
    assert "DEAD-LETTERED" in content
    assert "?periodic_task_name=misspelt&amp;state=failures&amp;sent_at__gte=" in content
    assert '?periodic_task_name=misspelt">all its runs</a>' in content
    url = reverse("admin:django_taskq_periodictask_change", args=[fresh.pk])
    assert "No run in the task history yet." in admin_client.get(url).content.decode()


def test_recent_failures_filter(admin_client, hourly):
    PeriodicTask.objects.create(name="misspelt", task="x", interval=hourly)
    PeriodicTask.objects.create(name="fine", task="x", interval=hourly)
    runs_of("misspelt")
    make_record(periodic_task_name="fine")
    failing = admin_client.get(CHANGELIST, {"failing": "yes"}).context["cl"].result_list
    assert [t.name for t in failing] == ["misspelt"]
    healthy = admin_client.get(CHANGELIST, {"failing": "no"}).context["cl"].result_list
    assert [t.name for t in healthy] == ["fine"]


def test_changelist_queries_stay_constant_with_10000_periodic_tasks(admin_client, hourly):
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=f"task-{i:05d}", task="t", interval=hourly) for i in range(5)]
    )
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST).status_code == 200
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=f"more-{i:05d}", task="t", interval=hourly) for i in range(10_000)]
    )
    now = timezone.now()
    TaskRecord.objects.bulk_create(
        [
            TaskRecord(
                task_id=f"run-{i}",
                task_name="t",
                periodic_task_name=f"more-{i % 10_000:05d}",
                state="FAILURE" if i % 3 else "SUCCESS",
                sent_at=now - dt.timedelta(minutes=i % 2000),
            )
            for i in range(20_000)
        ]
    )
    started = time.monotonic()
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert len(response.context["cl"].result_list) == 100
    first = response.context["cl"].result_list[0]
    assert first.name == "more-00000" and first.last_run_pk is not None
    print(f"\nperiodic task changelist, 10,000 tasks, 20,000 runs: {elapsed * 1000:.0f} ms")


def test_run_now_links_each_sent_task_to_its_history_row(admin_client, broker, hourly):
    a = PeriodicTask.objects.create(
        name="a", task="tests.testapp.tasks.add", interval=hourly, args=[1, 2]
    )
    b = PeriodicTask.objects.create(
        name="b", task="tests.testapp.tasks.add", interval=hourly, args=[3, 4]
    )
    response = admin_client.post(
        CHANGELIST, {"action": "run_now", "_selected_action": [a.pk, b.pk]}, follow=True
    )
    content = response.content.decode()
    assert "Sent 2 tasks:" in content
    from tests.beat.helpers import sent_messages

    for message in sent_messages(broker):
        task_id = message.body["id"]
        link = reverse("admin:django_taskq_taskrecord_by_task_id", args=[task_id])
        assert f'{message.name} (<a href="{link}">{task_id}</a>)' in content
        # Followed before the recorder wrote the row, the link says so; after, it opens it.
        followed = admin_client.get(link, follow=True)
        assert "has no history row yet" in followed.content.decode()
        record = make_record(task_id=task_id, periodic_task_name=message.name)
        assert admin_client.get(link)["location"] == record_url(record)
