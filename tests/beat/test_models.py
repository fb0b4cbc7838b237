"""Schedule models: constraints, validation, querysets, and change notices to beat."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.functional import Promise

from django_taskq.beat import schedule_changed, version
from django_taskq.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    ScheduleVersion,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def every_minute():
    return IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)


def test_every_field_has_verbose_name_and_help_text():
    for model in (
        IntervalSchedule,
        CrontabSchedule,
        ClockedSchedule,
        PeriodicTask,
        ScheduleVersion,
    ):
        for field in model._meta.get_fields():
            if (field.auto_created and not field.concrete) or (
                field.name == "id" and model is not ScheduleVersion
            ):
                continue
            # A translatable (lazy) verbose name was given explicitly, not derived from the name.
            assert isinstance(field.verbose_name, Promise), f"{model.__name__}.{field.name}"
            assert field.help_text, f"{model.__name__}.{field.name} has no help_text"


def test_exactly_one_schedule_is_a_database_constraint(every_minute):
    cron = CrontabSchedule.objects.create(minute="0")
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicTask.objects.create(name="none", task="t")
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicTask.objects.create(name="two", task="t", interval=every_minute, crontab=cron)
    PeriodicTask.objects.create(name="one", task="t", crontab=cron)
    # And full_clean reports it in words, for forms.
    with pytest.raises(ValidationError, match="exactly one schedule"):
        PeriodicTask(name="x", task="t").full_clean()


def test_priority_range_is_a_database_constraint(every_minute):
    with pytest.raises(IntegrityError), transaction.atomic():
        PeriodicTask.objects.create(name="p", task="t", interval=every_minute, priority=10)


def test_interval_is_unique_per_every_and_period(every_minute):
    with pytest.raises(IntegrityError), transaction.atomic():
        IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)


def test_crontab_fields_are_validated_on_save_naming_the_field():
    with pytest.raises(ValidationError) as info:
        CrontabSchedule.objects.create(minute="0", hour="25", day_of_week="8")
    assert set(info.value.message_dict) == {"hour", "day_of_week"}
    assert "hour" in info.value.message_dict["hour"][0]
    with pytest.raises(ValidationError, match="IANA"):
        CrontabSchedule.objects.create(timezone="Mars/Olympus")


def test_crontab_sunday_is_zero_or_seven_and_has_a_description():
    cron = CrontabSchedule.objects.create(minute="0", hour="3", day_of_week="7", timezone="UTC")
    assert cron.description == "At 03:00, only on Sunday (UTC)"
    weekday = CrontabSchedule(minute="0", hour="3", day_of_week="1-5", timezone="Europe/Berlin")
    assert weekday.description == "At 03:00, Monday through Friday (Europe/Berlin)"


def test_crontab_timezone_defaults_to_taskq_timezone_then_time_zone(settings):
    settings.TASKQ_TIMEZONE = None
    settings.TIME_ZONE = "America/New_York"
    assert CrontabSchedule().timezone == "America/New_York"
    settings.TASKQ_TIMEZONE = "Europe/Berlin"
    assert CrontabSchedule().timezone == "Europe/Berlin"


def test_interval_from_timedelta_picks_the_largest_unit():
    assert IntervalSchedule.from_timedelta(dt.timedelta(days=2)) == (2, "days")
    assert IntervalSchedule.from_timedelta(dt.timedelta(minutes=90)) == (90, "minutes")
    assert IntervalSchedule.from_timedelta(dt.timedelta(seconds=45)) == (45, "seconds")
    with pytest.raises(ValueError, match="whole number of seconds"):
        IntervalSchedule.from_timedelta(dt.timedelta(seconds=1.5))


def test_querysets_enabled_active_due(every_minute):
    now = timezone.now()
    long_ago = now - dt.timedelta(hours=1)
    due = PeriodicTask.objects.create(name="due", task="t", interval=every_minute)
    PeriodicTask.objects.filter(pk=due.pk).update(last_run_at=long_ago)
    fresh = PeriodicTask.objects.create(name="fresh", task="t", interval=every_minute)
    off = PeriodicTask.objects.create(name="off", task="t", interval=every_minute, enabled=False)
    later = PeriodicTask.objects.create(
        name="later", task="t", interval=every_minute, start_time=now + dt.timedelta(days=1)
    )
    expired = PeriodicTask.objects.create(
        name="expired", task="t", interval=every_minute, expires=long_ago
    )
    clock = ClockedSchedule.objects.create(clocked_time=now - dt.timedelta(seconds=5))
    clocked = PeriodicTask.objects.create(name="clocked", task="t", clocked=clock)
    assert off not in PeriodicTask.objects.enabled()
    assert set(PeriodicTask.objects.active(now)) == {due, fresh, clocked}
    assert set(PeriodicTask.objects.due(now)) == {due, clocked}
    assert later not in PeriodicTask.objects.due(now + dt.timedelta(hours=1))
    assert expired not in PeriodicTask.objects.due(now)


def test_upcoming_shows_the_next_runs_in_the_crontab_zone():
    cron = CrontabSchedule.objects.create(minute="30", hour="2", timezone="America/New_York")
    task = PeriodicTask.objects.create(name="nightly", task="t", crontab=cron)
    start = dt.datetime(2024, 3, 8, 12, tzinfo=UTC)
    PeriodicTask.objects.filter(pk=task.pk).update(date_changed=start)
    task.refresh_from_db()
    runs = task.upcoming(5, now=start)
    assert [f"{r:%m-%d %H:%M %Z}" for r in runs] == [
        "03-09 02:30 EST",
        "03-10 03:00 EDT",  # spring forward: once, at the first valid time
        "03-11 02:30 EDT",
        "03-12 02:30 EDT",
        "03-13 02:30 EDT",
    ]


def test_upcoming_of_an_interval_follows_the_last_run(every_minute, settings):
    settings.TASKQ_TIMEZONE = "Europe/Berlin"
    task = PeriodicTask.objects.create(name="i", task="t", interval=every_minute)
    last = timezone.now().replace(microsecond=0)
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=last)
    task.refresh_from_db()
    runs = task.upcoming(3, now=last)
    assert [r.astimezone(UTC) for r in runs] == [last + dt.timedelta(minutes=i) for i in (1, 2, 3)]
    assert str(runs[0].tzinfo) == "Europe/Berlin"


# -- change notices -----------------------------------------------------------------


def test_save_and_delete_bump_the_version_after_commit(
    broker, every_minute, django_capture_on_commit_callbacks
):
    pubsub = broker.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(version.channel())
    before = version.redis_version(broker)
    with django_capture_on_commit_callbacks(execute=True):
        task = PeriodicTask.objects.create(name="a", task="t", interval=every_minute)
    assert version.redis_version(broker) == before + 1
    pk = task.pk
    with django_capture_on_commit_callbacks(execute=True):
        task.delete()
    assert version.redis_version(broker) == before + 2
    messages = []
    for _ in range(20):
        message = pubsub.get_message(timeout=0.1)
        if message:
            messages.append(message["data"])
        if len(messages) == 2:
            break
    # Beat reloads or drops just that row; "@n" is the database version it produced.
    assert [m.decode().split("@")[0] for m in messages] == [f"task:{pk}"] * 2
    versions = [int(m.decode().split("@")[1]) for m in messages]
    if connection.vendor in {"sqlite", "postgresql"}:
        assert versions[1] == versions[0] + 1
    pubsub.close()


def test_runtime_only_saves_do_not_wake_beat(
    broker, every_minute, django_capture_on_commit_callbacks
):
    task = PeriodicTask.objects.create(name="a", task="t", interval=every_minute)
    before = version.redis_version(broker)
    with django_capture_on_commit_callbacks(execute=True):
        task.last_run_at = timezone.now()
        task.save(update_fields=["last_run_at"])
        PeriodicTask.objects.filter(pk=task.pk).update(total_run_count=3)
    assert version.redis_version(broker) == before
    with django_capture_on_commit_callbacks(execute=True):
        PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)
    assert version.redis_version(broker) == before + 1


def test_bulk_create_and_schedule_edits_wake_beat(
    broker, every_minute, django_capture_on_commit_callbacks
):
    before = version.redis_version(broker)
    with django_capture_on_commit_callbacks(execute=True):
        PeriodicTask.objects.bulk_create(
            [PeriodicTask(name=f"b{i}", task="t", interval=every_minute) for i in range(3)]
        )
    assert version.redis_version(broker) == before + 1
    with django_capture_on_commit_callbacks(execute=True):
        every_minute.every = 2
        every_minute.save()
    assert version.redis_version(broker) == before + 2


def test_raw_sql_is_counted_by_the_database_trigger(every_minute):
    if connection.vendor not in {"sqlite", "postgresql"}:
        pytest.skip("schedule version triggers exist on SQLite and PostgreSQL")
    task = PeriodicTask.objects.create(name="raw", task="t", interval=every_minute)
    before = version.db_version() or 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_taskq_periodictask SET enabled = %s WHERE id = %s", [False, task.pk]
        )
    after_change = version.db_version()
    assert after_change is not None and after_change > before
    # Beat's own writes (last_run_at, total_run_count) do not count.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_taskq_periodictask SET last_run_at = %s, total_run_count = 5 "
            "WHERE id = %s",
            [timezone.now(), task.pk],
        )
    assert version.db_version() == after_change
    with connection.cursor() as cursor:
        cursor.execute("UPDATE django_taskq_crontabschedule SET hour = '4'")
        cursor.execute("DELETE FROM django_taskq_periodictask WHERE id = %s", [task.pk])
    assert (version.db_version() or 0) > after_change


def test_schedule_changed_helper_bumps_both_versions(broker):
    before_db = version.db_version() or 0
    before_redis = version.redis_version(broker)
    schedule_changed()
    assert version.db_version() == before_db + 1
    assert version.redis_version(broker) == before_redis + 1


def test_a_save_while_redis_is_down_does_not_fail(
    redis_server, every_minute, django_capture_on_commit_callbacks, caplog
):
    redis_server.kill()
    with django_capture_on_commit_callbacks(execute=True):
        PeriodicTask.objects.create(name="offline", task="t", interval=every_minute)
    assert PeriodicTask.objects.filter(name="offline").exists()
    assert "will notice within" in caplog.text
