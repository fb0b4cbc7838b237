"""Load test: beat and the admin with 10,000 periodic tasks.

Run from the repository root (it starts its own redis-server and database)::

    python -m tests.beat.loadtest                 # SQLite
    python -m tests.beat.loadtest --db postgres   # PostgreSQL on 127.0.0.1:5432

It measures and prints (docs/benchmarks-beat.md reports a run):

1. beat start: process start -> "loaded N periodic tasks", and beat's own load time;
2. CPU and memory of the leader over an idle window (nothing due but a few
   every-minute tasks), and the dispatches it made meanwhile;
3. reaction to one admin save (targeted reload) and to ``schedule_changed()``
   (full reload of every row);
4. a burst: every task due at the same minute, how late the last one is in
   its stream (``python -m tests.beat.burst`` measures bursts in detail);
5. the admin changelist: queries and time per page, search and filter.

Nothing here asserts a time: these are figures to read, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _setup(db: str, redis_url: str) -> str:
    """Point Django at a fresh database of our own; returns its NAME."""
    os.environ["TASKQ_BROKER_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    if db == "postgres":
        import psycopg

        name = "taskq_beat_loadtest"
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.execute(f"CREATE DATABASE {name}")
        os.environ["TASKQ_TEST_DB"] = "postgres"
    else:
        name = os.path.join(tempfile.mkdtemp(prefix="taskq-beat-load-"), "load.sqlite3")
    os.environ["TASKQ_TEST_DB_NAME"] = name
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return name


def _create_tasks(count: int, every_minute: int) -> dict[str, int]:
    """A realistic mix: hourly-to-daily intervals, daily/weekly crontabs in many zones."""
    from django.utils import timezone

    from django_taskq.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
    )

    rng = random.Random(42)
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
    intervals = [
        IntervalSchedule.objects.get_or_create(every=n, period=IntervalSchedule.MINUTES)[0]
        for n in range(60, 24 * 60 + 1, 30)
    ]
    crons = [
        CrontabSchedule.objects.create(
            minute=str(rng.randrange(60)),
            hour=str(rng.randrange(24)),
            day_of_week=rng.choice(["*", "1-5", "0,6", "mon"]),
            timezone=rng.choice(zones),
        )
        for _ in range(300)
    ]
    now = timezone.now()
    clocks = [
        ClockedSchedule.objects.create(
            clocked_time=now + timezone.timedelta(days=rng.randrange(1, 90))
        )
        for _ in range(100)
    ]
    minute = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)[0]
    rows = []
    mix = {"interval": 0, "crontab": 0, "clocked": 0, "every-minute": 0}
    for i in range(count):
        kind = (
            "every-minute"
            if i < every_minute
            else rng.choices(["interval", "crontab", "clocked"], weights=[45, 45, 10])[0]
        )
        mix[kind] += 1
        schedule = {
            "interval": {"interval": rng.choice(intervals)},
            "crontab": {"crontab": rng.choice(crons)},
            "clocked": {"clocked": rng.choice(clocks)},
            "every-minute": {"interval": minute},
        }[kind]
        rows.append(
            PeriodicTask(
                name=f"load-{i:05d}",
                task=f"load.tasks.job_{i % 50}",
                args=[i],
                kwargs={"n": i},
                description=f"load test row {i}",
                **schedule,
            )
        )
    PeriodicTask.objects.bulk_create(rows, batch_size=1000)
    # Spread the last runs so intervals are not all due at one instant.
    from django.db.models import Case, Value, When

    for start in range(0, count, 1000):
        ids = list(
            PeriodicTask.objects.order_by("pk").values_list("pk", flat=True)[start : start + 1000]
        )
        PeriodicTask.objects.filter(pk__in=ids).update(
            last_run_at=Case(
                *[
                    When(pk=pk, then=Value(now - timezone.timedelta(minutes=rng.randrange(1, 59))))
                    for pk in ids
                ]
            )
        )
    PeriodicTask.objects.filter(interval=minute).update(last_run_at=now)
    return mix


def _ready_count(client: Any) -> int:
    """Messages in the ready streams of every known queue."""
    from django_taskq.broker import keys

    queues = [q.decode() for q in client.smembers(keys.queues())]
    return sum(client.xlen(k) for k in keys.streams_for(queues))


class Beat:
    """A ``manage.py taskq_beat`` subprocess with timestamped output."""

    def __init__(self, name: str) -> None:
        self.started = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "taskq_beat", "--hostname", name],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.time(), line.rstrip()))

    def wait_for(self, pattern: str, after: float = 0.0, timeout: float = 120) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= after and regex.search(line):
                    return at, line
            time.sleep(0.01)
        raise RuntimeError(
            f"no {pattern!r} in beat output:\n" + "\n".join(text for _, text in self.lines)
        )

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def _admin_figures() -> list[str]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.create_superuser("load", "load@example.com", "x")
    client = Client()
    client.force_login(user)
    lines = []
    base = "/admin/django_taskq/periodictask/"
    for label, query in [
        ("changelist, page 1", {}),
        ("changelist, page 50", {"p": "50"}),
        ("search 'load-0999'", {"q": "load-0999"}),
        ("filter crontab + enabled", {"schedule": "crontab", "enabled__exact": "1"}),
        ("sorted by last run", {"o": "-5"}),
    ]:
        client.get(base, query)  # warm caches
        timings = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(base, query)
                timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        lines.append(f"| {label} | {len(queries)} | {statistics.median(timings) * 1000:.0f} ms |")
    from django_taskq.models import PeriodicTask

    task = PeriodicTask.objects.filter(crontab__isnull=False).first()
    assert task is not None
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(f"{base}{task.pk}/change/")
        elapsed = time.perf_counter() - started
    lines.append(f"| change page (next 5 runs) | {len(queries)} | {elapsed * 1000:.0f} ms |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--every-minute", type=int, default=100, help="tasks due every minute")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from django_taskq.testing import RedisServer

    redis_server = RedisServer().start()
    try:
        _run(args, redis_server)
    finally:
        redis_server.close()


def _run(args: argparse.Namespace, redis_server: Any) -> None:
    name = _setup(args.db, redis_server.url)
    print(f"database: {args.db} ({name}); redis: {redis_server.url}")
    started = time.perf_counter()
    mix = _create_tasks(args.tasks, args.every_minute)
    print(f"created {args.tasks} periodic tasks {mix} in {time.perf_counter() - started:.1f}s")

    from django_taskq.beat import schedule_changed
    from django_taskq.models import CrontabSchedule, PeriodicTask

    beat = Beat("load-beat")
    try:
        at, line = beat.wait_for(r"loaded \d+ periodic tasks")
        self_reported = float(re.search(r"in ([0-9.]+)s", line).group(1))  # type: ignore[union-attr]
        print(
            f"beat start: {at - beat.started:.2f}s from process start to loaded "
            f"(of which loading {self_reported:.2f}s): {line.split('beat: ')[-1]}"
        )
        time.sleep(2)  # let the first catch-up settle
        client = redis_server.client()
        sent_before = _ready_count(client)
        cpu0, wall0 = beat.cpu_seconds(), time.monotonic()
        time.sleep(args.idle_seconds)
        cpu1, wall1 = beat.cpu_seconds(), time.monotonic()
        sent_after = _ready_count(client)
        print(
            f"idle: {100 * (cpu1 - cpu0) / (wall1 - wall0):.2f}% of one core over "
            f"{wall1 - wall0:.0f}s, RSS {beat.rss_mb():.0f} MB, "
            f"{sent_after - sent_before} runs sent meanwhile"
        )

        task = PeriodicTask.objects.get(name=f"load-{args.tasks // 2:05d}")
        task.description = "edited"
        saved = time.time()
        task.save()
        at, line = beat.wait_for(r"applied changes", after=saved - 0.01)
        print(f"one admin save -> applied by the leader after {1000 * (at - saved):.0f} ms")

        bumped = time.time()
        schedule_changed()
        at, line = beat.wait_for(r"reloaded \d+ periodic tasks", after=bumped - 0.01)
        print(f"schedule_changed() -> {line.split('beat: ')[-1]} (seen after {at - bumped:.2f}s)")

        # Burst: every task due at the same minute.
        from django.utils import timezone

        every_minute = CrontabSchedule.objects.create(minute="*", timezone="UTC")
        PeriodicTask.objects.update(
            crontab=every_minute, interval=None, clocked=None, last_run_at=timezone.now()
        )
        changed = time.time()
        beat.wait_for(r"reloaded \d+ periodic tasks", after=changed - 0.01)
        boundary = (int(time.time() // 60) + 1) * 60
        if boundary - time.time() < 5:
            boundary += 60
        time.sleep(max(0.0, boundary - time.time() + 5))
        from tests.beat.helpers import sent_messages

        due = dt.datetime.fromtimestamp(boundary, dt.UTC).isoformat()
        messages = [m for m in sent_messages(client) if m.due == due]
        lateness = sorted(m.added_ms - boundary * 1000 for m in messages)
        if lateness:
            print(
                f"burst: {len(lateness)} runs due at the same second were in their streams from "
                f"+{lateness[0]} ms to +{lateness[-1]} ms "
                f"(median +{statistics.median(lateness):.0f} ms)"
            )
    finally:
        beat.stop()

    print("admin with", PeriodicTask.objects.count(), "periodic tasks:")
    print("| page | queries | time |\n|---|---|---|")
    for row in _admin_figures():
        print(row)


if __name__ == "__main__":
    main()
