"""The beat service in a thread: leading, dispatching, failover, and surviving outages."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from django_taskq.beat import store
from django_taskq.beat.lease import lease_key
from django_taskq.models import IntervalSchedule, PeriodicTask

from .helpers import sent_messages

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(predicate, timeout: float = 10.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def every_second():
    interval = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name="tick", task="app.tasks.tick", interval=interval)


def runs_of(broker, name: str) -> list[str]:
    return [m.due for m in sent_messages(broker) if m.name == name]


def test_leader_dispatches_and_writes_last_run_at(broker, every_second, beat_thread):
    beat = beat_thread()
    wait_until(lambda: len(runs_of(broker, "tick")) >= 3)
    beat.stop()
    dues = runs_of(broker, "tick")
    assert len(dues) == len(set(dues))
    every_second.refresh_from_db()
    assert every_second.last_run_at is not None
    assert every_second.last_run_at.isoformat() == dues[-1]
    assert every_second.total_run_count == len(dues)
    assert broker.get(lease_key()) is None  # released on stop


def test_a_follower_takes_over_at_once_when_the_leader_stops(
    broker, every_second, beat_thread, caplog
):
    caplog.set_level(logging.INFO, logger="django_taskq.beat")
    first = beat_thread("first")
    wait_until(lambda: broker.get(lease_key()))
    second = beat_thread("second")
    wait_until(lambda: len(runs_of(broker, "tick")) >= 2)
    assert b"first" in broker.get(lease_key())
    first.stop()  # it notices within MAX_WAIT (1 s), then releases the lease
    stopped_at = time.monotonic()
    wait_until(lambda: (broker.get(lease_key()) or b"").startswith(b"second"), timeout=5)
    took_over = time.monotonic() - stopped_at
    assert took_over < 0.5  # the release notice wakes it; no waiting for expiry
    count = len(runs_of(broker, "tick"))
    wait_until(lambda: len(runs_of(broker, "tick")) >= count + 2)
    second.stop()
    dues = runs_of(broker, "tick")
    assert len(dues) == len(set(dues)), "a run was sent twice"


def test_beat_survives_database_errors_and_catches_up(
    broker, every_second, beat_thread, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="django_taskq.beat")
    from django.db import OperationalError

    real_load = store.load_entries
    failures = {"left": 3}

    def flaky_load(ids=None):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("connection already closed")
        return real_load(ids)

    monkeypatch.setattr(store, "load_entries", flaky_load)
    beat = beat_thread()
    wait_until(lambda: len(runs_of(broker, "tick")) >= 2, timeout=15)
    beat.stop()
    assert caplog.text.count("cannot load periodic tasks") == 3
    assert "connection already closed" in caplog.text
    assert "retrying in" in caplog.text


def test_beat_keeps_sending_while_it_cannot_write_run_times(
    broker, every_second, beat_thread, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING, logger="django_taskq.beat")
    from django.db import OperationalError

    real_write = store.write_back
    broken = {"on": True}

    def flaky_write(pending):
        if broken["on"]:
            raise OperationalError("server closed the connection unexpectedly")
        return real_write(pending)

    monkeypatch.setattr(store, "write_back", flaky_write)
    beat = beat_thread()
    wait_until(lambda: len(runs_of(broker, "tick")) >= 3)
    every_second.refresh_from_db()
    assert every_second.total_run_count == 0
    assert "cannot write run times" in caplog.text
    broken["on"] = False
    wait_until(
        lambda: PeriodicTask.objects.get(pk=every_second.pk).total_run_count >= 3, timeout=15
    )
    beat.stop()
    every_second.refresh_from_db()
    assert every_second.total_run_count == len(runs_of(broker, "tick"))


def test_connection_closed_under_beat_is_reopened(
    broker, every_second, beat_thread, monkeypatch, caplog
):
    """The classic "connection already closed": a persistent connection dies under beat."""
    caplog.set_level(logging.WARNING, logger="django_taskq.beat")
    connections.settings["default"]["CONN_MAX_AGE"] = None  # persistent, as in production
    real = store.close_old_connections
    calls = {"n": 0}

    def close_raw_connection_once():
        real()
        calls["n"] += 1
        if calls["n"] == 3 and connection.connection is not None:
            connection.connection.close()  # the server side went away

    monkeypatch.setattr(store, "close_old_connections", close_raw_connection_once)
    try:
        beat = beat_thread()
        wait_until(lambda: calls["n"] > 3 and len(runs_of(broker, "tick")) >= 3, timeout=15)
        wait_until(lambda: PeriodicTask.objects.get(pk=every_second.pk).total_run_count >= 2)
        beat.stop()
    finally:
        connections.settings["default"]["CONN_MAX_AGE"] = 0
    assert "closed" in caplog.text  # logged, retried, and beat carried on


def test_beat_survives_a_redis_restart(broker, redis_server, every_second, beat_thread, caplog):
    caplog.set_level(logging.INFO, logger="django_taskq.beat")
    beat = beat_thread()
    wait_until(lambda: len(runs_of(broker, "tick")) >= 2)
    redis_server.kill()
    wait_until(lambda: "Redis error" in caplog.text)
    redis_server.start()  # empty: streams and keys are gone with the data
    wait_until(lambda: len(runs_of(broker, "tick")) >= 2, timeout=20)
    beat.stop()
    assert "Redis error" in caplog.text
    assert "Redis is reachable again" in caplog.text


def test_orm_edits_reach_the_leader_through_their_notices(
    broker, every_second, beat_thread, settings, caplog
):
    """save(), queryset.update() and delete() reach the leader by notice, not by the poll.

    The version poll is an hour apart here, so only the notices can deliver
    the edits; time passing is shown by a marker task that runs every second.
    """
    caplog.set_level(logging.INFO, logger="django_taskq.beat")
    settings.TASKQ_BEAT_VERSION_POLL_SECONDS = 3600
    interval = every_second.interval
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    quiet = PeriodicTask.objects.create(name="quiet", task="app.tasks.quiet", interval=hourly)
    PeriodicTask.objects.create(name="marker", task="app.tasks.marker", interval=interval)
    # It last ran 30 minutes ago: next run in half an hour...
    half_hour_ago = timezone.now() - dt.timedelta(minutes=30)
    PeriodicTask.objects.filter(pk=quiet.pk).update(last_run_at=half_hour_ago)
    quiet.refresh_from_db()
    beat = beat_thread()
    wait_until(lambda: runs_of(broker, "tick"))
    assert not runs_of(broker, "quiet")
    # ...until save() makes it every second: overdue, so it is sent at once.
    quiet.interval = interval
    quiet.save()
    wait_until(lambda: runs_of(broker, "quiet"))
    assert "applied changes to 1 periodic task(s)" in caplog.text

    def two_more_markers() -> None:
        seen = len(runs_of(broker, "marker"))
        wait_until(lambda: len(runs_of(broker, "marker")) >= seen + 2)

    # queryset.update(): disabling stops the runs (a notice to reload everything).
    PeriodicTask.objects.filter(name="quiet").update(enabled=False)
    wait_until(lambda: "reloaded" in caplog.text)
    count = len(runs_of(broker, "quiet"))
    two_more_markers()
    assert len(runs_of(broker, "quiet")) == count
    # delete(): gone.
    applied = caplog.text.count("applied changes to 1 periodic task(s)")
    every_second.delete()
    wait_until(lambda: caplog.text.count("applied changes to 1 periodic task(s)") > applied)
    count = len(runs_of(broker, "tick"))
    two_more_markers()
    beat.stop()
    assert len(runs_of(broker, "tick")) == count
    assert "schedule version changed" not in caplog.text  # nothing came by the poll


def test_an_orm_save_does_not_cause_a_full_reload_at_the_next_poll(
    broker, every_second, beat_thread, settings, caplog
):
    caplog.set_level(logging.DEBUG, logger="django_taskq.beat")
    settings.TASKQ_BEAT_VERSION_POLL_SECONDS = 0.5
    beat = beat_thread()
    wait_until(lambda: runs_of(broker, "tick"))
    every_second.description = "edited"
    every_second.save()
    wait_until(lambda: "applied changes to 1 periodic task(s)" in caplog.text)
    applied_at = caplog.text.index("applied changes to 1 periodic task(s)")
    # Three polls after the change was applied, each finding the counters explained.
    wait_until(lambda: caplog.text.count("unchanged", applied_at) >= 3)
    beat.stop()
    assert "schedule version changed" not in caplog.text
    assert "reloaded" not in caplog.text


def test_raw_sql_is_noticed_by_the_version_poll(
    broker, every_second, beat_thread, settings, caplog
):
    if connection.vendor not in {"sqlite", "postgresql"}:
        pytest.skip("schedule version triggers exist on SQLite and PostgreSQL")
    caplog.set_level(logging.DEBUG, logger="django_taskq.beat")
    settings.TASKQ_BEAT_VERSION_POLL_SECONDS = 0.5
    beat = beat_thread()
    wait_until(lambda: runs_of(broker, "tick"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE django_taskq_periodictask SET enabled = %s", [False])
    # No notice: the poll finds the change, waits once for a notice, then reloads.
    wait_until(lambda: "schedule version changed" in caplog.text)
    wait_until(lambda: "reloaded" in caplog.text)
    reloaded_at = caplog.text.index("reloaded")
    count = len(runs_of(broker, "tick"))
    # Two more polls after the reload: time passes, and nothing is sent.
    wait_until(lambda: caplog.text.count("unchanged", reloaded_at) >= 2)
    beat.stop()
    assert len(beat.beat.scheduler) == 0
    assert len(runs_of(broker, "tick")) == count


def test_whatever_is_published_or_stored_beside_it_beat_goes_on(
    broker, every_second, beat_thread, caplog
):
    """Notices and the version key are plain Redis: any client can write anything there."""
    from django_taskq.beat import version

    caplog.set_level(logging.INFO, logger="django_taskq.beat")
    beat = beat_thread()
    wait_until(lambda: runs_of(broker, "tick"))
    for junk in [b"\xff\xfe", "task:\u00b2", "task:1@\u00b2", "nosuchkind:5", "task:", ":", ""]:
        broker.publish(version.channel(), junk)
    broker.set(version.version_key(), b"not a number \xff")
    broker.publish(version.channel(), "*")
    count = len(runs_of(broker, "tick"))
    wait_until(lambda: len(runs_of(broker, "tick")) >= count + 2)
    assert beat.thread.is_alive()
    beat.stop()
    assert "unexpected error" not in caplog.text
    assert "Traceback" not in caplog.text
