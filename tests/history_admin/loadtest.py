"""Load test: the task history admin on a history of a million rows.

Run from the repository root::

    python -m tests.history_admin.loadtest                   # PostgreSQL, 1,000,000 rows
    python -m tests.history_admin.loadtest --rows 200000 --db sqlite
    python -m tests.history_admin.loadtest --reuse           # the same rows again

It fills a fresh database of its own (``taskq_history_loadtest`` on
127.0.0.1:5432, or a temporary SQLite file) with rows spread over 7 days,
50 task names, 6 queues and 24 workers, 1,000 periodic tasks, then times
each admin page through Django's test client (median of 5, after a warm-up)
with its number of queries and the slowest query. For comparison it times
what Django's defaults would run on the same table: an exact ``COUNT(*)``,
a ``SELECT DISTINCT`` of the task names, and the date hierarchy's distinct
days. Nothing here asserts a time: these are figures to read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

NAMES = 50
QUEUES = ("default", "mail", "reports", "billing", "images", "search")
WORKERS = 24
PERIODIC = 1000


def setup(db: str, reuse: bool = False) -> None:
    os.environ.setdefault("TASKQ_BROKER_URL", "redis://127.0.0.1:1/0")  # never contacted
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    if db == "postgres":
        import psycopg

        name = "taskq_history_loadtest"
        if not reuse:
            with psycopg.connect(
                "host=127.0.0.1 user=postgres dbname=postgres", autocommit=True
            ) as c:
                c.execute(f"DROP DATABASE IF EXISTS {name}")
                c.execute(f"CREATE DATABASE {name}")
        os.environ["TASKQ_TEST_DB"] = "postgres"
    else:
        name = os.path.join(tempfile.mkdtemp(prefix="taskq-history-load-"), "load.sqlite3")
    os.environ["TASKQ_TEST_DB_NAME"] = name
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill_postgres(rows: int) -> None:
    """Insert ``rows`` history rows in one INSERT ... SELECT over generate_series."""
    from django.db import connection

    body = '{"id":"x","task":"app.tasks.t","args":[1,2,"abc"],"kwargs":{},"queue":"default"}'
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO django_taskq_taskrecord (
                task_id, task_name, state, dead_lettered, reason, args, kwargs, result,
                exception_type, exception_message, traceback, queue, priority, worker,
                retries, delivery_count, sent_at, received_at, started_at, finished_at,
                runtime, wait_time, parent_id, root_id, group_id, periodic_task_name,
                retry_of, body, updated_at)
            SELECT
                md5(i::text) || '-' || i,
                'app' || (i %% %(names)s) || '.tasks.job_' || (i %% 7),
                CASE WHEN i %% 50 = 0 THEN 'FAILURE' WHEN i %% 97 = 0 THEN 'REVOKED'
                     WHEN i %% 1000 = 1 THEN 'STARTED' ELSE 'SUCCESS' END,
                i %% 500 = 0,
                '',
                '[' || i || ', ''customer-' || (i %% 10000) || ''']',
                '{}',
                CASE WHEN i %% 50 = 0 THEN '' ELSE (i * 3)::text END,
                CASE WHEN i %% 50 = 0 THEN 'ValueError' ELSE '' END,
                CASE WHEN i %% 50 = 0 THEN 'boom' ELSE '' END,
                CASE WHEN i %% 50 = 0 THEN repeat('Traceback line\n', 40) ELSE '' END,
                (%(queues)s::text[])[1 + i %% %(nqueues)s],
                5,
                'taskq@host-' || (i %% %(workers)s),
                0, 0,
                now() - (i * interval '7 days' / %(rows)s),
                now() - (i * interval '7 days' / %(rows)s) + interval '10 ms',
                now() - (i * interval '7 days' / %(rows)s) + interval '20 ms',
                now() - (i * interval '7 days' / %(rows)s) + interval '120 ms',
                0.1, 0.02,
                CASE WHEN i %% 3 = 0 THEN md5((i - 1)::text) || '-' || (i - 1) ELSE '' END,
                CASE WHEN i %% 3 = 0 THEN md5((i - 1)::text) || '-' || (i - 1) ELSE '' END,
                '',
                CASE WHEN i %% 20 = 0 THEN 'periodic-' || (i %% %(periodic)s) ELSE '' END,
                '',
                %(body)s,
                now()
            FROM generate_series(1, %(rows)s) AS i
            """,
            {
                "rows": rows,
                "names": NAMES,
                "queues": list(QUEUES),
                "nqueues": len(QUEUES),
                "workers": WORKERS,
                "periodic": PERIODIC,
                "body": body,
            },
        )
        cursor.execute("VACUUM ANALYZE django_taskq_taskrecord")


def fill_orm(rows: int) -> None:
    """Insert ``rows`` history rows through the ORM (SQLite), 10,000 at a time."""
    import datetime as dt

    from django.utils import timezone

    from django_taskq.history.models import TaskRecord

    now = timezone.now()
    step = dt.timedelta(days=7) / rows
    for start in range(0, rows, 10_000):
        TaskRecord.objects.bulk_create(
            [
                TaskRecord(
                    task_id=f"t-{i}",
                    task_name=f"app{i % NAMES}.tasks.job_{i % 7}",
                    state="FAILURE" if i % 50 == 0 else "SUCCESS",
                    dead_lettered=i % 500 == 0,
                    args=f"[{i}, 'customer-{i % 10000}']",
                    queue=QUEUES[i % len(QUEUES)],
                    worker=f"taskq@host-{i % WORKERS}",
                    sent_at=now - i * step,
                    runtime=0.1,
                    periodic_task_name=f"periodic-{i % PERIODIC}" if i % 20 == 0 else "",
                    parent_id=f"t-{i - 1}" if i % 3 == 0 else "",
                )
                for i in range(start, min(start + 10_000, rows))
            ]
        )


def periodic_tasks() -> None:
    from django_taskq.models import IntervalSchedule, PeriodicTask

    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.bulk_create(
        [
            PeriodicTask(name=f"periodic-{i}", task="app0.tasks.job_0", interval=hourly)
            for i in range(PERIODIC)
        ]
    )


def timed(label: str, get: Callable[[], Any], runs: int = 5) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    get()  # warm-up: caches, plans, template loading
    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = get()
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (label, response.status_code)
    slowest = max(float(q["time"]) for q in queries.captured_queries)
    print(
        f"{label:<48} {statistics.median(times) * 1000:8.1f} ms  "
        f"{len(queries.captured_queries):3d} queries  slowest query {slowest * 1000:6.1f} ms"
    )


def plain_admin_get(user: Any) -> Callable[[dict[str, str]], Any]:
    """The changelist of a TaskRecord admin with Django's defaults, for comparison.

    Same columns, filters (AllValuesFieldListFilter for name, queue and
    worker), date hierarchy and search; Django's paginator, facets and full
    count. Called directly (RequestFactory), under the admin's URL names.
    """
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from django_taskq.history.models import TaskRecord

    class Plain(admin.ModelAdmin):  # type: ignore[type-arg]
        list_display = ("state", "task_name", "task_id", "queue", "worker", "sent_at", "runtime")
        list_filter = ("state", "task_name", "queue", "worker", "dead_lettered", "sent_at")
        date_hierarchy = "sent_at"
        search_fields = ("=task_id", "task_name", "args", "kwargs")

    model_admin = Plain(TaskRecord, admin.site)

    def get(params: dict[str, str]) -> Any:
        request = RequestFactory().get("/admin/django_taskq/taskrecord/", params)
        request.user = user
        request.session = SessionStore()
        request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
        response = model_admin.changelist_view(request)
        response.render()
        return response

    return get


def sql_time(label: str, sql: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.fetchall()
        started = time.perf_counter()
        cursor.execute(sql)
        cursor.fetchall()
    print(f"{label:<48} {(time.perf_counter() - started) * 1000:8.1f} ms  (one query)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--reuse", action="store_true", help="PostgreSQL: time the rows of the last run again"
    )
    options = parser.parse_args()
    setup(options.db, options.reuse and options.db == "postgres")

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from django_taskq.history.models import TaskRecord

    if not (options.reuse and TaskRecord.objects.exists()):
        started = time.perf_counter()
        (fill_postgres if connection.vendor == "postgresql" else fill_orm)(options.rows)
        periodic_tasks()
        elapsed = time.perf_counter() - started
        print(f"filled {options.rows:,} rows in {elapsed:.1f} s ({connection.vendor})")
        get_user_model().objects.create_superuser("load", "load@example.com", "pw")
    user = get_user_model().objects.get(username="load")
    client = Client()
    client.force_login(user)
    changelist = reverse("admin:django_taskq_taskrecord_changelist")
    some = (
        TaskRecord.objects.filter(state="FAILURE", parent_id__gt="").order_by("-sent_at")[:1].get()
    )
    detail = reverse("admin:django_taskq_taskrecord_change", args=[some.pk])
    day = some.sent_at
    since = timezone.now() - dt.timedelta(hours=24)

    pages: list[tuple[str, dict[str, str]]] = [
        ("list, first page", {}),
        ("list, page 50", {"p": "50"}),
        ("list, state = FAILURE", {"state": "FAILURE"}),
        ("list, failed/revoked/dead-lettered", {"state": "failures"}),
        ("list, one task name", {"task_name": "app7.tasks.job_0"}),
        ("list, one queue + one worker", {"queue": "mail", "worker": "taskq@host-1"}),
        ("list, queue + worker that match nothing", {"queue": "mail", "worker": "taskq@host-3"}),
        ("list, dead-lettered", {"dead_lettered__exact": "1"}),
        (
            "list, one day (date hierarchy)",
            {
                "sent_at__year": str(day.year),
                "sent_at__month": str(day.month),
                "sent_at__day": str(day.day),
            },
        ),
        ("list, last 24 h (date filter)", {"sent_at__gte": since.isoformat()}),
        ("list, search exact task id", {"q": some.task_id}),
        ("list, search an argument", {"q": "customer-4242"}),
        ("list, periodic task's runs", {"periodic_task_name": "periodic-40"}),
    ]
    print(f"\nTaskRecord admin, {TaskRecord.objects.count():,} rows:")
    for label, params in pages:
        timed(label, lambda params=params: client.get(changelist, params))
    timed("detail page of a failed task", lambda: client.get(detail))
    periodic = reverse("admin:django_taskq_periodictask_changelist")
    timed(f"periodic task list ({PERIODIC:,} tasks, last run + 24 h)", lambda: client.get(periodic))

    print("\nThe same list with Django's defaults (paginator, filters, date hierarchy):")
    plain = plain_admin_get(user)
    for label, params in pages[:3] + pages[4:5]:
        timed(label, lambda params=params: plain(params))

    print("\nWhat Django's defaults run on every page view:")
    table = "django_taskq_taskrecord"
    sql_time("exact COUNT(*) of the table", f"SELECT COUNT(*) FROM {table}")
    sql_time("SELECT DISTINCT task_name", f"SELECT DISTINCT task_name FROM {table} ORDER BY 1")
    if connection.vendor == "postgresql":
        sql_time(
            "distinct days of the last month (date hierarchy)",
            f"SELECT DISTINCT date_trunc('day', sent_at) FROM {table} "
            f"WHERE sent_at >= now() - interval '31 days'",
        )


if __name__ == "__main__":
    main()
