"""TASKQ_BEAT_SCHEDULE is copied into the database as settings-owned rows."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from django_taskq.beat.sync import sync
from django_taskq.exceptions import ImproperlyConfiguredTaskq
from django_taskq.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_taskq.schedules import crontab, schedule

pytestmark = pytest.mark.django_db

SCHEDULE = {
    "every-30s": {"task": "app.tasks.ping", "schedule": 30.0},
    "every-2h": {"task": "app.tasks.tidy", "schedule": dt.timedelta(hours=2), "args": (1, "x")},
    "nightly": {
        "task": "app.tasks.report",
        "schedule": crontab(minute=0, hour=3, day_of_week="mon-fri", tz="Europe/Berlin"),
        "kwargs": {"full": True},
        "options": {"queue": "low", "priority": 2, "expires": 600, "headers": {"team": "ops"}},
    },
    "custom": {"task": "app.tasks.custom", "schedule": schedule(dt.timedelta(minutes=5))},
}


def test_sync_creates_settings_rows_with_every_option():
    report = sync(SCHEDULE)
    assert sorted(report.created) == sorted(SCHEDULE)
    rows = {t.name: t for t in PeriodicTask.objects.with_schedules()}
    assert all(t.source == PeriodicTask.SOURCE_SETTINGS for t in rows.values())
    assert (rows["every-30s"].interval.every, rows["every-30s"].interval.period) == (30, "seconds")
    assert (rows["every-2h"].interval.every, rows["every-2h"].interval.period) == (2, "hours")
    assert rows["every-2h"].args == [1, "x"]
    nightly = rows["nightly"]
    assert nightly.crontab.expression == "0 3 * * mon-fri"
    assert nightly.crontab.timezone == "Europe/Berlin"
    assert (nightly.queue, nightly.priority, nightly.expire_seconds) == ("low", 2, 600)
    assert nightly.headers == {"team": "ops"} and nightly.kwargs == {"full": True}
    assert rows["custom"].interval.every == 5


def test_resync_keeps_run_state_and_writes_nothing_unchanged():
    sync(SCHEDULE)
    last = timezone.now().replace(microsecond=0)
    PeriodicTask.objects.filter(name="every-30s").update(last_run_at=last, total_run_count=7)
    before = dict(PeriodicTask.objects.values_list("name", "date_changed"))
    report = sync(SCHEDULE)
    assert report.created == report.updated == report.removed == []
    assert dict(PeriodicTask.objects.values_list("name", "date_changed")) == before
    row = PeriodicTask.objects.get(name="every-30s")
    assert (row.last_run_at, row.total_run_count) == (last, 7)


def test_changed_entries_are_rewritten_and_removed_ones_deleted():
    sync(SCHEDULE)
    changed = dict(SCHEDULE)
    changed["every-30s"] = {"task": "app.tasks.ping", "schedule": 45}
    del changed["custom"]
    report = sync(changed)
    assert report.updated == ["every-30s"]
    assert report.removed == ["custom"]
    assert PeriodicTask.objects.get(name="every-30s").interval.every == 45
    assert not PeriodicTask.objects.filter(name="custom").exists()
    sync({})
    assert not PeriodicTask.objects.filter(source=PeriodicTask.SOURCE_SETTINGS).exists()


def test_admin_rows_are_never_touched(caplog):
    every = IntervalSchedule.objects.create(every=1, period="hours")
    admin_row = PeriodicTask.objects.create(name="every-30s", task="mine", interval=every)
    other = PeriodicTask.objects.create(name="admin-only", task="mine", interval=every)
    with caplog.at_level(logging.WARNING, logger="django_taskq.beat"):
        report = sync(SCHEDULE)
    assert report.skipped == ["every-30s"]
    assert "created in the admin" in caplog.text
    admin_row.refresh_from_db()
    assert admin_row.task == "mine" and admin_row.source == PeriodicTask.SOURCE_ADMIN
    sync({})
    assert PeriodicTask.objects.filter(pk__in=[admin_row.pk, other.pk]).count() == 2


def test_crontab_rows_are_shared_not_duplicated():
    sync(SCHEDULE)
    sync({**SCHEDULE, "nightly-2": {**SCHEDULE["nightly"], "task": "app.tasks.other"}})
    assert CrontabSchedule.objects.count() == 1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"schedule": 5}, "'task'"),
        ({"task": "t"}, "'schedule' is required"),
        ({"task": "t", "schedule": "5"}, "'schedule' must be"),
        ({"task": "t", "schedule": 0.5}, "whole number of seconds"),
        ({"task": "t", "schedule": -1}, "positive"),
        ({"task": "t", "schedule": 5, "args": "x"}, "'args' must be a list"),
        ({"task": "t", "schedule": 5, "kwargs": [1]}, "'kwargs' must be a dict"),
        ({"task": "t", "schedule": 5, "options": {"colour": 1}}, "unknown option"),
        ({"task": "t", "schedule": 5, "bogus": 1}, "unknown key"),
        ({"task": "t", "schedule": 5, "options": {"priority": 11}}, "priority"),
        ({"task": "t", "schedule": 5, "args": [object()]}, "JSON"),
    ],
)
def test_bad_entries_fail_loudly_naming_the_entry(entry, message):
    with pytest.raises(ImproperlyConfiguredTaskq, match=message) as info:
        sync({"broken": entry})
    assert "TASKQ_BEAT_SCHEDULE['broken']" in str(info.value)
    assert not PeriodicTask.objects.exists()
