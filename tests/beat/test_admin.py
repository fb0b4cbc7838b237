"""The periodic task admin, through Django's test client."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_taskq.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask

from .helpers import sent_messages

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_taskq_periodictask_changelist")
ADD = reverse("admin:django_taskq_periodictask_add")


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_taskq_periodictask_change", args=[task.pk])


@pytest.fixture
def hourly():
    return IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)


@pytest.fixture
def weekday_cron():
    return CrontabSchedule.objects.create(
        minute="0", hour="3", day_of_week="1-5", timezone="Europe/Berlin"
    )


def form_data(**overrides):
    data = {
        "name": "nightly",
        "task": "tests.testapp.tasks.add",
        "enabled": "on",
        "description": "",
        "interval": "",
        "crontab": "",
        "clocked": "",
        "start_time_0": "",
        "start_time_1": "",
        "expires_0": "",
        "expires_1": "",
        "max_staleness": "",
        "args": "[1, 2]",
        "kwargs": "{}",
        "queue": "",
        "priority": "",
        "headers": "{}",
        "expire_seconds": "",
    }
    data.update(overrides)
    return data


def make_tasks(count: int, hourly, weekday_cron):
    clock = ClockedSchedule.objects.create(clocked_time=timezone.now() + dt.timedelta(days=1))
    schedules = [{"interval": hourly}, {"crontab": weekday_cron}, {"clocked": clock}]
    PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(name=f"task-{i:05d}", task="tests.testapp.tasks.add", **schedules[i % 3])
            for i in range(count)
        ]
    )


def test_changelist_query_count_does_not_grow_with_rows(admin_client, hourly, weekday_cron):
    make_tasks(5, hourly, weekday_cron)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST).status_code == 200
    make_tasks(0, hourly, weekday_cron)
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=f"more-{i:05d}", task="t", crontab=weekday_cron) for i in range(300)]
    )
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    assert len(many) <= 8
    assert b"At 03:00, Monday through Friday (Europe/Berlin)" in response.content


def test_changelist_filters_and_search(admin_client, hourly, weekday_cron):
    make_tasks(6, hourly, weekday_cron)
    response = admin_client.get(CHANGELIST, {"schedule": "crontab"})
    assert response.context["cl"].result_count == 2
    response = admin_client.get(CHANGELIST, {"q": "task-00004"})
    assert [t.name for t in response.context["cl"].result_list] == ["task-00004"]


def test_add_form_offers_registered_tasks_and_autocomplete_schedules(admin_client):
    response = admin_client.get(ADD)
    content = response.content.decode()
    assert '<datalist id="id_task_options">' in content
    assert '<option value="tests.testapp.tasks.add">' in content
    assert content.count("admin-autocomplete") >= 3  # interval, crontab, clocked


def test_add_valid_task(admin_client, weekday_cron):
    response = admin_client.post(ADD, form_data(crontab=weekday_cron.pk, priority="7"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    task = PeriodicTask.objects.get(name="nightly")
    assert (task.args, task.kwargs, task.priority, task.crontab) == ([1, 2], {}, 7, weekday_cron)
    assert task.source == PeriodicTask.SOURCE_ADMIN


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"args": "[1, 2, 3]"}, "args", "too many positional arguments"),
        ({"args": "[1]"}, "args", "missing a required argument: 'y'"),
        (
            {"args": "[]", "kwargs": '{"x": 1, "y": 2, "z": 3}'},
            "kwargs",
            "unexpected keyword argument 'z'",
        ),
        ({"args": '{"x": 1}'}, "args", "JSON list"),
        ({"kwargs": "[1]"}, "kwargs", "JSON object"),
        ({"args": "[1,"}, "args", "valid JSON"),
        ({"priority": "12"}, "priority", "less than or equal to 9"),
        ({"queue": "two words"}, "queue", "A queue name has no whitespace"),
        ({"queue": "{tag}"}, "queue", "A queue name has no whitespace"),
    ],
)
def test_wrong_calls_are_caught_in_the_form(admin_client, hourly, overrides, field, fragment):
    response = admin_client.post(ADD, form_data(interval=hourly.pk, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and fragment in " ".join(errors[field]), errors
    assert not PeriodicTask.objects.exists()


def test_bound_task_signature_skips_self(admin_client, hourly):
    data = form_data(interval=hourly.pk, task="tests.testapp.tasks.flaky", args='["k", 2]')
    assert admin_client.post(ADD, data).status_code == 302


def test_exactly_one_schedule_in_the_form(admin_client, hourly, weekday_cron):
    for data in (form_data(), form_data(interval=hourly.pk, crontab=weekday_cron.pk)):
        response = admin_client.post(ADD, data)
        assert response.status_code == 200
        assert "Set exactly one schedule" in response.content.decode()


def test_unregistered_task_name_is_refused_unless_ticked(admin_client, hourly):
    data = form_data(interval=hourly.pk, task="only.workers.know.this", args="[1, 2, 3, 4]")
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "No worker has registered a task named only.workers.know.this" in errors["task"][0]
    assert not PeriodicTask.objects.exists()

    response = admin_client.post(ADD, {**data, "allow_unregistered": "on"}, follow=True)
    assert PeriodicTask.objects.filter(task="only.workers.know.this").exists()
    assert "is not registered in this web process" in response.content.decode()


def test_task_name_a_worker_registered_is_accepted_with_a_warning(
    admin_client, hourly, monkeypatch
):
    # The workers' names come through one function (h3's registered_task_names once merged).
    monkeypatch.setattr(
        "django_taskq.beat.task_names.registered_by_workers", lambda: {"only.workers.know.this"}
    )
    data = form_data(interval=hourly.pk, task="only.workers.know.this", args="[1, 2, 3, 4]")
    response = admin_client.post(ADD, data, follow=True)
    assert PeriodicTask.objects.filter(task="only.workers.know.this").exists()
    assert "is not registered in this web process" in response.content.decode()


def test_task_names_unreadable_from_redis_need_the_tick(admin_client, hourly, monkeypatch):
    from django_taskq.exceptions import BrokerUnavailable

    def down():
        raise BrokerUnavailable("Redis at redis://127.0.0.1:1/0 is unreachable")

    monkeypatch.setattr("django_taskq.beat.task_names.registered_by_workers", down)
    data = form_data(interval=hourly.pk, task="only.workers.know.this", args="[1, 2, 3, 4]")
    response = admin_client.post(ADD, data)
    [error] = response.context["adminform"].form.errors["task"]
    assert error.startswith("Could not read which tasks the workers registered (Redis at")
    assert admin_client.post(ADD, {**data, "allow_unregistered": "on"}).status_code == 302
    # A name this process registered needs no Redis.
    data = form_data(name="known", interval=hourly.pk, task="tests.testapp.tasks.add")
    assert admin_client.post(ADD, data).status_code == 302


def test_change_page_shows_description_and_next_five_runs(admin_client, weekday_cron):
    task = PeriodicTask.objects.create(
        name="n", task="tests.testapp.tasks.add", crontab=weekday_cron, args=[1, 2]
    )
    content = admin_client.get(change_url(task)).content.decode()
    assert "At 03:00, Monday through Friday (Europe/Berlin)" in content
    assert content.count("<li><time datetime=") == 5
    assert "CET" in content or "CEST" in content


def test_settings_rows_are_read_only_with_a_note(admin_client, hourly):
    task = PeriodicTask.objects.create(
        name="from-settings", task="t", interval=hourly, source=PeriodicTask.SOURCE_SETTINGS
    )
    response = admin_client.get(change_url(task))
    content = response.content.decode()
    assert "defined in the TASKQ_BEAT_SCHEDULE setting" in content
    assert 'name="_save"' not in content
    response = admin_client.post(change_url(task), form_data(name="renamed", interval=hourly.pk))
    assert response.status_code == 403
    delete = reverse("admin:django_taskq_periodictask_delete", args=[task.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    task.refresh_from_db()
    assert task.name == "from-settings"


def test_enable_and_disable_actions_leave_settings_rows_alone(admin_client, hourly):
    mine = PeriodicTask.objects.create(name="mine", task="t", interval=hourly)
    theirs = PeriodicTask.objects.create(
        name="theirs", task="t", interval=hourly, source=PeriodicTask.SOURCE_SETTINGS
    )
    data = {"action": "disable_tasks", "_selected_action": [mine.pk, theirs.pk]}
    response = admin_client.post(CHANGELIST, data, follow=True)
    content = response.content.decode()
    assert "1 periodic task disabled." in content
    assert "comes from TASKQ_BEAT_SCHEDULE" in content
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.enabled, theirs.enabled) == (False, True)
    admin_client.post(CHANGELIST, {**data, "action": "enable_tasks"})
    mine.refresh_from_db()
    assert mine.enabled


def test_run_now_sends_with_every_option(admin_client, broker, hourly):
    ends = timezone.now() + dt.timedelta(days=1)
    task = PeriodicTask.objects.create(
        name="report",
        task="tests.testapp.tasks.add",
        interval=hourly,
        args=[2, 3],
        queue="reports",
        priority=8,
        headers={"team": "ops"},
        expire_seconds=120,
        expires=ends,
    )
    response = admin_client.post(
        CHANGELIST, {"action": "run_now", "_selected_action": [task.pk]}, follow=True
    )
    content = response.content.decode()
    assert "Sent 1 task: report (" in content
    [message] = sent_messages(broker)
    assert (message.task, message.queue, message.priority) == (
        "tests.testapp.tasks.add",
        "reports",
        8,
    )
    assert message.body["args"] == [2, 3]
    headers = message.body["headers"]
    assert headers["team"] == "ops" and headers["periodic_task_name"] == "report"
    assert headers["periodic_task_manual"] is True
    assert message.body["expires"] == pytest.approx(timezone.now().timestamp() + 120, abs=5)
    task.refresh_from_db()
    assert task.last_run_at is None  # a manual run does not move the schedule


def test_crontab_admin_names_the_bad_field(admin_client):
    url = reverse("admin:django_taskq_crontabschedule_add")
    data = {
        "minute": "0",
        "hour": "25",
        "day_of_month": "*",
        "month_of_year": "*",
        "day_of_week": "mon-fri",
        "timezone": "Europe/Berlin",
    }
    response = admin_client.post(url, data)
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["hour"]
    assert "hour: '25' is not a valid cron field" in errors["hour"][0]
    response = admin_client.post(url, {**data, "hour": "3", "timezone": "Berlin"})
    assert "IANA" in response.context["adminform"].form.errors["timezone"][0]
    assert admin_client.post(url, {**data, "hour": "3"}).status_code == 302


def test_autocomplete_search_for_schedules(admin_client, weekday_cron):
    url = reverse("admin:autocomplete")
    response = admin_client.get(
        url,
        {
            "term": "Europe",
            "app_label": "django_taskq",
            "model_name": "periodictask",
            "field_name": "crontab",
        },
    )
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(weekday_cron.pk)]
