"""End to end: real ``taskq_beat`` subprocesses, the test's Redis and database.

What beat enqueued is read straight from the Redis streams, so no worker is
needed except in the last test, which runs ``taskq_worker -B`` and checks
that the periodic task actually ran.

Timings are measured and printed (run with ``-s`` to see them) but asserted
only loosely, so a loaded CI machine does not fail them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import statistics
import time
from collections import Counter, defaultdict

import pytest
from django.urls import reverse
from django.utils import timezone

from django_taskq.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from .helpers import Sent, leader_pid, sent_messages

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LEADS = "is now the leader"


def due_of(message: Sent) -> dt.datetime:
    assert message.due is not None
    return dt.datetime.fromisoformat(message.due)


def interval_task(name: str, seconds: int, **kwargs) -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    return PeriodicTask.objects.create(
        name=name, task="tests.testapp.tasks.echo", interval=interval, args=[name], **kwargs
    )


def by_task(messages: list[Sent]) -> dict[str, list[dt.datetime]]:
    runs: dict[str, list[dt.datetime]] = defaultdict(list)
    for message in messages:
        if message.name:
            runs[message.name].append(due_of(message))
    return {name: sorted(dues) for name, dues in runs.items()}


def assert_exactly_once(messages: list[Sent]) -> None:
    counts = Counter((m.name, m.due) for m in messages)
    duplicates = {key: n for key, n in counts.items() if n > 1}
    assert not duplicates, f"runs sent more than once: {duplicates}"


def test_every_second_schedule_precision(broker, beat_process):
    for i in range(3):
        interval_task(f"tick-{i}", 1)
    beat = beat_process("precise")
    beat.wait_for("loaded 3 periodic tasks")
    time.sleep(8)
    beat.terminate()
    messages = sent_messages(broker)
    assert_exactly_once(messages)
    late_ms = [m.added_ms - due_of(m).timestamp() * 1000 for m in messages]
    assert len(messages) >= 3 * 6
    quantiles = statistics.quantiles(late_ms, n=20)
    print(
        f"\nbeat precision over {len(late_ms)} runs (ms after due time): "
        f"min {min(late_ms):.1f}, median {statistics.median(late_ms):.1f}, "
        f"p95 {quantiles[18]:.1f}, max {max(late_ms):.1f}"
    )
    assert min(late_ms) >= 0  # never early
    # The median, not the maximum: a beat that is late by design moves the
    # median, while one instant stalled by a loaded machine (CI, with another
    # suite beside it: median 121 ms, but 3 of 42 runs 5.1 s late) only moves
    # a few runs. Lateness is measured by tests/beat/burst.py and
    # loadtest.py (docs/benchmarks-beat.md), not asserted here.
    assert statistics.median(late_ms) < 1000
    runs = by_task(messages)
    for dues in runs.values():  # no drift: exactly one second apart, every time
        assert {b - a for a, b in itertools.pairwise(dues)} == {dt.timedelta(seconds=1)}


#: How long two beats run side by side (the issue asks for 60 s).
TWO_BEATS_SECONDS = 60


def test_two_beats_send_each_run_exactly_once(broker, beat_process):
    """Two beats for 60 s: every due run is enqueued exactly once, by one leader."""
    interval_task("every-1s", 1)
    interval_task("every-2s", 2)
    interval_task("every-3s", 3)
    cron = CrontabSchedule.objects.create(minute="*", timezone="Europe/Berlin")
    PeriodicTask.objects.create(
        name="every-minute", task="tests.testapp.tasks.echo", crontab=cron, args=["m"]
    )
    env = {"TASKQ_TEST_BEAT_SCHEDULE": "demo"}
    launched = time.time()
    a = beat_process("beat-a", **env)
    b = beat_process("beat-b", **env)
    started = time.time()
    time.sleep(TWO_BEATS_SECONDS)
    ended = time.time()
    leaders = [beat for beat in (a, b) if (beat.when(LEADS) or ended) < ended]
    a.terminate()
    b.terminate()
    stopped = time.time()
    messages = sent_messages(broker)
    assert_exactly_once(messages)
    assert len(leaders) == 1, a.output + "\n----\n" + b.output
    runs = by_task(messages)
    for name, seconds in (
        ("every-1s", 1),
        ("every-2s", 2),
        ("every-3s", 3),
        ("settings-every-2s", 2),
    ):
        dues = runs[name]
        gaps = {b - a for a, b in itertools.pairwise(dues)}
        assert gaps == {dt.timedelta(seconds=seconds)}, (name, dues)  # none missed, none doubled
        assert len(dues) >= (ended - started - 3) // seconds
    # The beats run from `launched` until `stopped` (terminate() waits for them), a
    # little longer than the 60 s between `started` and `ended`: a minute mark that
    # falls in that margin may or may not have been sent.
    minutes = runs.get("every-minute", [])
    assert {b - a for a, b in itertools.pairwise(minutes)} <= {dt.timedelta(minutes=1)}
    surely = int(ended // 60) - int(started // 60)
    possibly = int(stopped // 60) - int(launched // 60)
    assert surely - 1 <= len(minutes) <= possibly, (minutes, launched, started, ended, stopped)
    assert all(due.timestamp() <= stopped for due in minutes), minutes  # never early
    print(
        f"\ntwo beats, {TWO_BEATS_SECONDS} s: {len(messages)} runs, each exactly once; "
        f"leader {leaders[0].hostname}"
    )


def test_killing_the_leader_hands_over_without_duplicates(broker, beat_process):
    lease = 3.0
    interval_task("every-1s", 1)
    env = {"TASKQ_TEST_LEASE": str(lease)}
    a = beat_process("beat-a", **env)
    b = beat_process("beat-b", **env)
    deadline = time.monotonic() + 15
    while leader_pid(broker) not in {a.pid, b.pid} and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(4)
    leader, follower = (a, b) if leader_pid(broker) == a.pid else (b, a)
    killed_at = time.time()
    leader.kill()  # SIGKILL: no release, no flush
    took_over_at = follower.wait_for(LEADS, timeout=lease + 10)
    time.sleep(5)
    follower.terminate()
    takeover = took_over_at - killed_at
    messages = sent_messages(broker)
    assert_exactly_once(messages)
    dues = by_task(messages)["every-1s"]
    gaps = [(x, y) for x, y in itertools.pairwise(dues) if y - x != dt.timedelta(seconds=1)]
    missed = sum(int((y - x).total_seconds()) - 1 for x, y in gaps)
    print(
        f"\nkill -9 of the leader: takeover after {takeover:.2f}s (lease {lease:g}s); "
        f"{missed} one-second runs fell in the leaderless window and were caught up as one"
    )
    assert takeover <= lease + 1.5
    assert len(gaps) <= 1  # one hole at most: the leaderless window, caught up once
    for before, after in gaps:
        assert (after - before).total_seconds() <= lease + 2
        assert before.timestamp() >= killed_at - 2  # the hole starts at the kill...
        assert after.timestamp() <= took_over_at + 1  # ...and ends with the takeover
    assert dues[-1].timestamp() >= time.time() - 7  # and it kept going afterwards


def test_admin_edit_is_in_effect_within_a_second(broker, beat_process, admin_client):
    hourly = IntervalSchedule.objects.create(every=1, period="hours")
    every_second = IntervalSchedule.objects.create(every=1, period="seconds")
    task = PeriodicTask.objects.create(
        name="edited", task="tests.testapp.tasks.add", interval=hourly, args=[1, 2]
    )
    PeriodicTask.objects.filter(pk=task.pk).update(
        last_run_at=timezone.now() - dt.timedelta(minutes=30)
    )
    beat = beat_process("admin-edit")
    beat.wait_for("loaded 1 periodic tasks")
    time.sleep(0.5)
    assert sent_messages(broker) == []
    url = reverse("admin:django_taskq_periodictask_change", args=[task.pk])
    data = {
        "name": "edited",
        "task": "tests.testapp.tasks.add",
        "enabled": "on",
        "interval": every_second.pk,
        "args": "[1, 2]",
        "kwargs": "{}",
        "headers": "{}",
        **{
            k: ""
            for k in (
                "description",
                "crontab",
                "clocked",
                "start_time_0",
                "start_time_1",
                "expires_0",
                "expires_1",
                "max_staleness",
                "queue",
                "priority",
                "expire_seconds",
            )
        },
    }
    saved_at = time.time()
    response = admin_client.post(url, data)
    assert response.status_code == 302
    deadline = time.monotonic() + 5
    while not sent_messages(broker) and time.monotonic() < deadline:
        time.sleep(0.005)
    first = sent_messages(broker)[0]
    delay = first.added_ms / 1000 - saved_at
    beat.terminate()
    print(f"\nadmin edit -> first run of the new schedule enqueued after {delay * 1000:.0f} ms")
    assert delay < 1.0


def test_settings_schedule_is_synced_then_removed(broker, beat_process):
    beat = beat_process("settings", TASKQ_TEST_BEAT_SCHEDULE="demo")
    beat.wait_for("loaded 1 periodic tasks")
    row = PeriodicTask.objects.get(name="settings-every-2s")
    assert row.source == PeriodicTask.SOURCE_SETTINGS
    deadline = time.monotonic() + 6
    while not sent_messages(broker) and time.monotonic() < deadline:
        time.sleep(0.05)
    beat.terminate()
    assert [m.name for m in sent_messages(broker)][:1] == ["settings-every-2s"]
    again = beat_process("settings-2")
    again.wait_for("loaded 0 periodic tasks")
    again.terminate()
    assert not PeriodicTask.objects.filter(name="settings-every-2s").exists()


def test_a_bad_settings_schedule_stops_beat_with_its_name(beat_process):
    beat = beat_process("bad-settings", TASKQ_TEST_BEAT_SCHEDULE="bad")
    assert beat.process is not None
    assert beat.process.wait(30) != 0
    time.sleep(0.2)  # let the reader thread collect the last lines
    assert "TASKQ_BEAT_SCHEDULE['broken-entry']: 'schedule' must be" in beat.output


def test_sigterm_stops_beat_cleanly_and_releases_the_lease(broker, beat_process):
    interval_task("every-1s", 1)
    beat = beat_process("graceful")
    beat.wait_for(LEADS)
    time.sleep(1.5)
    assert beat.terminate() == 0
    assert "released the leader lease" in beat.output
    assert leader_pid(broker) is None
    row = PeriodicTask.objects.get(name="every-1s")
    assert row.total_run_count == len(sent_messages(broker)) > 0  # written before exit


def test_worker_with_embedded_beat_runs_the_periodic_task(broker):
    from tests.e2e_helpers import WorkerProcess

    every_second = IntervalSchedule.objects.create(every=1, period="seconds")
    PeriodicTask.objects.create(
        name="record",
        task="tests.testapp.tasks.record",
        interval=every_second,
        args=["beat-ran", "x"],
    )
    worker = WorkerProcess("-Q", "default", "-c", "1", "-P", "solo", "-B").start()
    try:
        deadline = time.monotonic() + 15
        while broker.llen("beat-ran") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.signal(signal.SIGTERM)
        worker.process.wait(15) if worker.process else None
        worker.kill()
    assert broker.llen("beat-ran") >= 2, worker.output
    assert os.environ["TASKQ_BROKER_URL"]  # the test Redis, never another
