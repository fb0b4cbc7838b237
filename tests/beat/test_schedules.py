"""The public ``schedule`` and ``crontab`` values and cron descriptions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from django_taskq.beat.cron import CronFieldError, CronSpec
from django_taskq.beat.describe import describe
from django_taskq.schedules import crontab, schedule

UTC = dt.UTC


def test_schedule_accepts_timedelta_or_seconds_and_does_not_drift():
    every = schedule(dt.timedelta(seconds=90))
    assert schedule(90) == every
    last = dt.datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert every.next_after(last) == last + dt.timedelta(seconds=90)
    now = last + dt.timedelta(hours=1, seconds=7)
    missed = every.latest_at_or_before(last, now)
    assert missed == last + 40 * dt.timedelta(seconds=90)  # still on the same grid
    assert every.describe() == "Every 90 seconds"
    assert schedule(dt.timedelta(hours=2)).describe() == "Every 2 hours"


@pytest.mark.parametrize("bad", [0, -5, dt.timedelta(0)])
def test_schedule_rejects_non_positive(bad):
    with pytest.raises(ValueError, match="positive"):
        schedule(bad)


def test_schedule_rejects_other_types():
    with pytest.raises(TypeError, match="timedelta or a number"):
        schedule("5")  # type: ignore[arg-type]


def test_crontab_takes_celery_forms():
    cron = crontab(minute=0, hour=[3, 15], day_of_week="mon-fri", tz="Europe/Berlin")
    assert (cron.minute, cron.hour, cron.day_of_week) == ("0", "3,15", "mon-fri")
    assert cron.timezone == "Europe/Berlin"
    start = dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # a Monday
    assert cron.next_after(start) == dt.datetime(2024, 1, 1, 2, 0, tzinfo=UTC)


def test_crontab_validates_when_made_naming_the_field():
    with pytest.raises(CronFieldError, match="hour '25'"):
        crontab(hour=25)
    with pytest.raises(TypeError, match="minute"):
        crontab(minute=1.5)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="Nowhere/Land"):
        crontab(tz="Nowhere/Land")


def test_crontab_zone_defaults_to_taskq_timezone_then_time_zone():
    with override_settings(TASKQ_TIMEZONE=None, TIME_ZONE="America/New_York"):
        assert crontab(hour=3).timezone == "America/New_York"
    with override_settings(TASKQ_TIMEZONE="Asia/Tokyo", TIME_ZONE="America/New_York"):
        assert crontab(hour=3).timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (
            {"minute": "0", "hour": "3", "day_of_week": "1-5", "timezone": "Europe/Berlin"},
            "At 03:00, Monday through Friday (Europe/Berlin)",
        ),
        ({}, "Every minute (UTC)"),
        ({"minute": "*/15"}, "Every 15 minutes (UTC)"),
        ({"minute": "30"}, "At minute 30 past the hour (UTC)"),
        (
            {"minute": "0", "hour": "9-17"},
            "At minute 0 past the hour, between 09:00 and 17:59 (UTC)",
        ),
        (
            {"minute": "0", "hour": "0", "day_of_month": "L"},
            "At 00:00, on the last day of the month (UTC)",
        ),
        ({"minute": "0", "hour": "0", "day_of_week": "7"}, "At 00:00, only on Sunday (UTC)"),
        (
            {"minute": "0", "hour": "0", "day_of_week": "5#2"},
            "At 00:00, on the second Friday of the month (UTC)",
        ),
        # croniter marks "the last Friday" with "l", beside the ints of "5#2":
        # describing it once raised TypeError comparing the two.
        (
            {"minute": "0", "hour": "0", "day_of_week": "L5"},
            "At 00:00, on the last Friday of the month (UTC)",
        ),
        (
            {"minute": "0", "hour": "0", "day_of_week": "5#2,L5"},
            "At 00:00, on the second Friday of the month and the last Friday of the month (UTC)",
        ),
        (
            {"minute": "0", "hour": "12", "month_of_year": "jan-mar"},
            "At 12:00, in January through March (UTC)",
        ),
        (
            {"minute": "0", "hour": "8,18", "day_of_month": "1,15"},
            "At 08:00 and 18:00, on days 1 and 15 of the month (UTC)",
        ),
    ],
)
def test_descriptions(fields, text):
    assert describe(CronSpec(**fields)) == text


def test_a_cron_description_names_days_months_and_ordinals_in_the_active_language() -> None:
    from django.utils import translation

    with translation.override("es"):
        weekdays = describe(CronSpec(minute="0", hour="3", day_of_week="1-5"))
        nth = describe(CronSpec(minute="0", hour="9", day_of_week="1#2", month_of_year="1"))
    assert "lunes" in weekdays and "viernes" in weekdays and "Monday" not in weekdays
    assert "segundo" in nth and "lunes" in nth and "enero" in nth, nth
    assert "second" not in nth and "January" not in nth, nth
