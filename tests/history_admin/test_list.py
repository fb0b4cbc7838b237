"""The task history list: columns, filters, search, and its cost on a large table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_taskq.history.distinct import distinct_values
from django_taskq.history.filters import PriorityFilter, TaskNameFilter
from django_taskq.history.models import TaskRecord
from django_taskq.history.paginator import EstimatedCountPaginator

from .conftest import make_record

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_taskq_taskrecord_changelist")


def shown(response: Any) -> list[str]:
    return [r.task_id for r in response.context["cl"].result_list]


def bulk(count: int, **fields: Any) -> None:
    now = timezone.now()
    TaskRecord.objects.bulk_create(
        [
            TaskRecord(
                task_id=f"bulk-{fields.get('task_name', 'x')}-{i}",
                task_name=fields.get("task_name", "tests.testapp.tasks.add"),
                state=fields.get("state", "SUCCESS"),
                queue=fields.get("queue", "default"),
                worker=fields.get("worker", "taskq@web-1"),
                sent_at=now - dt.timedelta(seconds=i),
                args=f"[{i}]",
                body="x" * 1000,
                traceback="y" * 1000,
            )
            for i in range(count)
        ]
    )


def test_list_shows_a_badge_and_the_columns(admin_client):
    make_record(task_id="ok-1", runtime=0.25, retries=2)
    make_record(task_id="dead-1", state="FAILURE", dead_lettered=True)
    make_record(task_id="held-1", state="RECEIVED")
    response = admin_client.get(CHANGELIST)
    content = response.content.decode()
    assert response.status_code == 200
    assert '<span class="taskq-badge taskq-badge-success">SUCCESS</span>' in content
    assert '<span class="taskq-badge taskq-badge-received">RECEIVED</span>' in content
    assert 'taskq-badge-dead" title="FAILURE">DEAD-LETTERED</span>' in content
    assert "0.250 s" in content
    assert "taskq@web-1" in content
    assert "django_taskq/history.css" in content
    # No add button: rows are the recorder's.
    assert reverse("admin:django_taskq_taskrecord_add") not in content


def test_newest_first(admin_client):
    now = timezone.now()
    make_record(task_id="old", sent_at=now - dt.timedelta(hours=2))
    make_record(task_id="new", sent_at=now)
    make_record(task_id="middle", sent_at=now - dt.timedelta(hours=1))
    assert shown(admin_client.get(CHANGELIST)) == ["new", "middle", "old"]


def test_query_count_does_not_grow_with_rows_and_large_columns_are_not_read(admin_client):
    bulk(5)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST).status_code == 200
    bulk(300, task_name="other.task", queue="q2", worker="w2")
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    select = [
        q["sql"] for q in many.captured_queries if 'ORDER BY "django_taskq_taskrecord"' in q["sql"]
    ]
    assert select, [q["sql"] for q in many.captured_queries]
    for sql in select:
        assert '"body"' not in sql and '"traceback"' not in sql
    # Filters and the date hierarchy read index ends, never every distinct value.
    for query in many.captured_queries:
        sql = query["sql"].upper()
        assert "SELECT DISTINCT" not in sql, sql
        assert "DATE_TRUNC" not in sql and "DJANGO_DATETIME_TRUNC" not in sql, sql


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "FAILURE"}, {"failed", "dead"}),
        ({"state": "failures"}, {"failed", "dead", "revoked"}),
        ({"state": "PROGRESS"}, {"custom"}),
        ({"state": "RECEIVED"}, {"held"}),
        ({"task_name": "tests.testapp.tasks.fail"}, {"failed", "dead"}),
        ({"queue": "reports"}, {"revoked"}),
        ({"worker": "taskq@web-2"}, {"custom"}),
        ({"dead_lettered__exact": "1"}, {"dead"}),
        ({"parent_id": "ok"}, {"custom"}),
        ({"root_id": "ok"}, {"ok", "custom"}),
        ({"periodic_task_name": "nightly"}, {"revoked"}),
        ({"priority": "9"}, {"held"}),
        ({"priority": "0"}, {"custom"}),
        ({"priority": "5"}, {"ok", "failed", "dead", "revoked"}),  # not "unknown" (None)
        ({"priority": "3"}, set()),
    ],
)
def test_filters(admin_client, params, expected):
    make_record(task_id="ok")
    make_record(task_id="failed", state="FAILURE", task_name="tests.testapp.tasks.fail")
    make_record(
        task_id="dead", state="FAILURE", task_name="tests.testapp.tasks.fail", dead_lettered=True
    )
    make_record(task_id="revoked", state="REVOKED", queue="reports", periodic_task_name="nightly")
    make_record(
        task_id="custom",
        state="PROGRESS",
        worker="taskq@web-2",
        parent_id="ok",
        root_id="ok",
        priority=0,
    )
    make_record(task_id="held", state="RECEIVED", worker="taskq@web-3", priority=9)
    make_record(task_id="unknown", priority=None)  # sent before priorities were recorded
    response = admin_client.get(CHANGELIST, params)
    assert response.status_code == 200, response.get("location")
    assert set(shown(response)) == expected


def test_priority_filter_lists_0_to_9_without_a_query_and_refuses_others(admin_client):
    make_record(task_id="high", priority=9)
    make_record(task_id="low", priority=1)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"priority": "1"})
    assert shown(response) == ["low"]
    [spec] = [f for f in response.context["cl"].filter_specs if isinstance(f, PriorityFilter)]
    choices = [c["display"] for c in spec.choices(response.context["cl"])]
    assert choices == ["All", *[str(p) for p in range(9, -1, -1)]]
    # Its choices are fixed: no query reads the priority column for them.
    assert not any("DISTINCT" in q["sql"].upper() for q in queries.captured_queries)
    assert 'href="?priority=9"' in response.content.decode()
    # A value outside 0-9 (a hand-edited URL) gets the admin's "?e=1", not a 500.
    for bad in ("10", "x", "-1"):
        refused = admin_client.get(CHANGELIST, {"priority": bad})
        assert refused.status_code == 302 and refused["location"].endswith("?e=1"), bad


def test_date_filters_and_hierarchy(admin_client):
    tz = timezone.get_current_timezone()
    make_record(task_id="march", sent_at=dt.datetime(2024, 3, 5, 12, tzinfo=tz))
    make_record(task_id="may", sent_at=dt.datetime(2024, 5, 20, 12, tzinfo=tz))
    make_record(task_id="next-year", sent_at=dt.datetime(2025, 1, 2, 12, tzinfo=tz))
    top = admin_client.get(CHANGELIST).content.decode()
    assert "?sent_at__year=2024" in top and "?sent_at__year=2025" in top
    year = admin_client.get(CHANGELIST, {"sent_at__year": "2024"})
    assert set(shown(year)) == {"march", "may"}
    content = year.content.decode()
    for month in (3, 4, 5):  # every month between the first and the last send
        assert f"sent_at__month={month}" in content
    assert "sent_at__month=6" not in content
    day = admin_client.get(
        CHANGELIST, {"sent_at__year": "2024", "sent_at__month": "5", "sent_at__day": "20"}
    )
    assert shown(day) == ["may"]
    since = admin_client.get(CHANGELIST, {"sent_at__gte": "2024-05-01T00:00:00+00:00"})
    assert set(shown(since)) == {"may", "next-year"}


def test_one_month_opens_at_its_days(admin_client):
    tz = timezone.get_current_timezone()
    make_record(task_id="a", sent_at=dt.datetime(2024, 3, 5, 12, tzinfo=tz))
    make_record(task_id="b", sent_at=dt.datetime(2024, 3, 7, 12, tzinfo=tz))
    content = admin_client.get(CHANGELIST).content.decode()
    for day in (5, 6, 7):
        assert f"sent_at__day={day}" in content
    assert "sent_at__day=8" not in content


def test_value_filters_list_distinct_values_up_to_their_limit(admin_client, monkeypatch):
    for name in ("b.task", "a.task", "c.task", "a.task"):
        make_record(task_name=name)
    make_record(task_name="d.task", worker="")
    assert distinct_values(TaskRecord, "task_name", 10) == ["a.task", "b.task", "c.task", "d.task"]
    assert distinct_values(TaskRecord, "task_name", 2) == ["a.task", "b.task"]
    assert distinct_values(TaskRecord, "worker", 10) == ["taskq@web-1"]  # blank skipped
    monkeypatch.setattr(TaskNameFilter, "limit", 2)
    response = admin_client.get(CHANGELIST, {"task_name": "d.task"})
    [spec] = [f for f in response.context["cl"].filter_specs if isinstance(f, TaskNameFilter)]
    choices = [c["display"] for c in spec.choices(response.context["cl"])]
    # The first two, and the chosen one although it is beyond the limit.
    assert choices[1:] == ["a.task", "b.task", "d.task"]
    assert len(shown(response)) == 1


def test_search_by_task_id_name_and_args(admin_client):
    make_record(task_id="0b8f-1", task_name="billing.tasks.invoice", args="['ACME-42']")
    make_record(task_id="0b8f-2", task_name="mail.tasks.send", args="['bob@example.com']")
    with CaptureQueriesContext(connection) as queries:
        by_id = admin_client.get(CHANGELIST, {"q": "0b8f-1"})
    assert shown(by_id) == ["0b8f-1"]
    # The exact id is looked up by the unique index, not with LIKE over the table.
    assert not any("LIKE" in q["sql"] for q in queries.captured_queries)
    assert shown(admin_client.get(CHANGELIST, {"q": "invoice"})) == ["0b8f-1"]
    assert shown(admin_client.get(CHANGELIST, {"q": "bob@example"})) == ["0b8f-2"]
    assert shown(admin_client.get(CHANGELIST, {"q": "0b8f"})) == []  # ids match exactly


def test_workflow_filter_shows_only_when_set(admin_client):
    make_record(task_id="p")
    make_record(task_id="c", parent_id="p")
    plain = admin_client.get(CHANGELIST).content.decode()
    assert "By parent id" not in plain
    filtered = admin_client.get(CHANGELIST, {"parent_id": "p"})
    assert shown(filtered) == ["c"]
    assert "By parent id" in filtered.content.decode()


def test_by_task_id_link_finds_the_row_or_says_why_not(admin_client):
    record = make_record(task_id="abc/1")
    url = reverse("admin:django_taskq_taskrecord_by_task_id", args=["abc/1"])
    response = admin_client.get(url)
    assert response.status_code == 302
    assert response["location"] == reverse("admin:django_taskq_taskrecord_change", args=[record.pk])
    missing = reverse("admin:django_taskq_taskrecord_by_task_id", args=["not-yet"])
    response = admin_client.get(missing, follow=True)
    assert response.redirect_chain[-1][0] == CHANGELIST + "?task_id=not-yet"
    assert "Task not-yet has no history row yet" in response.content.decode()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="estimated counts are PostgreSQL's planner's"
)
def test_postgresql_counts_past_the_limit_are_estimates(admin_client, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 50)
    bulk(120)
    bulk(3, task_name="rare.task")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE django_taskq_taskrecord")
    response = admin_client.get(CHANGELIST)
    cl = response.context["cl"]
    assert cl.paginator.estimated
    assert cl.result_count >= 51
    assert "about" in response.content.decode()
    filtered = admin_client.get(CHANGELIST, {"task_name": "rare.task"})
    assert not filtered.context["cl"].paginator.estimated
    assert filtered.context["cl"].result_count == 3
    # A filtered list past the limit takes EXPLAIN's estimate.
    many = admin_client.get(CHANGELIST, {"task_name": "tests.testapp.tasks.add"})
    assert many.context["cl"].paginator.estimated
    assert many.context["cl"].result_count >= 51


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_a_slow_count_gives_way_to_the_estimate(monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "count_timeout_ms", 20)
    bulk(5)
    # Each row costs the count 50 ms: the count is cancelled, the estimate shown instead.
    slow = TaskRecord.objects.extra(where=["pg_sleep(0.05)::text = ''"])
    paginator = EstimatedCountPaginator(slow, 100)
    assert paginator.count == 101  # never below one page and one row: Django must slice
    assert paginator.estimated
    # The request's transaction (the test's) is still usable, without the short timeout.
    assert TaskRecord.objects.count() == 5
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.05)")
    fast = EstimatedCountPaginator(TaskRecord.objects.all(), 100)
    assert (fast.count, fast.estimated) == (5, False)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement_timeout is PostgreSQL's")
def test_a_count_outside_a_transaction_leaves_no_timeout_behind(monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "count_timeout_ms", 20)
    bulk(2)
    assert EstimatedCountPaginator(TaskRecord.objects.all(), 100).count == 2
    with connection.cursor() as cursor:  # autocommit: a statement of its own, no timeout
        cursor.execute("SELECT pg_sleep(0.05)")


def test_other_databases_count_exactly(admin_client):
    bulk(7)
    cl = admin_client.get(CHANGELIST).context["cl"]
    assert cl.result_count == 7
    assert not cl.paginator.estimated
