"""The read-only detail page of a task: every field, its workflow links, progress, traceback."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_taskq.history.display import parse_progress, seconds
from django_taskq.history.related import SHOWN
from django_taskq.models import IntervalSchedule, PeriodicTask

from .conftest import PASSWORD, TRACEBACK, failed_record, make_record

pytestmark = pytest.mark.django_db


def change_url(record) -> str:
    return reverse("admin:django_taskq_taskrecord_change", args=[record.pk])


def test_every_field_is_shown_read_only(admin_client):
    record = failed_record(
        args=[2, 3],
        worker="taskq@web-7",
        reason="worker lost",
        retries=2,
        delivery_count=1,
    )
    response = admin_client.get(change_url(record))
    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        record.task_id,
        "tests.testapp.tasks.add",
        '<span class="taskq-badge taskq-badge-failure">FAILURE</span>',
        "taskq@web-7",
        "worker lost",
        '<pre class="taskq-pre ">[2, 3]</pre>',
        "ValueError",
        # The traceback in a preformatted block, escaped, lines kept.
        '<pre class="taskq-pre taskq-traceback">Traceback (most recent call last):\n'
        "  File &quot;tests/testapp/tasks.py&quot;, line 31, in fail\n",
        "1.000 s",  # runtime
        # The message as sent, indented for reading.
        "&quot;task&quot;: &quot;tests.testapp.tasks.add&quot;",
    ):
        assert text in content, text
    assert TRACEBACK.splitlines()[-1] in content
    # Read-only for everyone, superusers too: no inputs, no save button.
    assert 'name="_save"' not in content
    assert 'name="task_name"' not in content


def test_rows_cannot_be_added_or_edited(admin_client):
    record = make_record()
    assert admin_client.get(reverse("admin:django_taskq_taskrecord_add")).status_code == 403
    response = admin_client.post(change_url(record), {"task_name": "changed", "state": "SUCCESS"})
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.task_name == "tests.testapp.tasks.add"


def test_delete_needs_the_delete_permission(client, user_with):
    record = make_record()
    delete_url = reverse("admin:django_taskq_taskrecord_delete", args=[record.pk])
    viewer = user_with("view")
    client.force_login(viewer)
    assert client.get(change_url(record)).status_code == 200
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    deleter = user_with("view", "delete")
    client.force_login(deleter)
    assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not type(record).objects.filter(pk=record.pk).exists()


def test_workflow_links(admin_client):
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    periodic = PeriodicTask.objects.create(
        name="nightly", task="tests.testapp.tasks.add", interval=hourly
    )
    root = make_record(task_id="root-1", task_name="wf.first")
    parent = make_record(task_id="parent-1", task_name="wf.parent", root_id="root-1")
    record = make_record(
        task_id="me",
        task_name="wf.me",
        parent_id="parent-1",
        root_id="root-1",
        group_id="grp-1",
        periodic_task_name="nightly",
        retry_of="gone-1",
        state="FAILURE",
    )
    child = make_record(task_id="child-1", task_name="wf.child", parent_id="me", root_id="root-1")
    sibling = make_record(
        task_id="sib-1", task_name="wf.sibling", group_id="grp-1", root_id="root-1"
    )
    again = make_record(task_id="again-1", task_name="wf.me", retry_of="me", state="SUCCESS")
    content = admin_client.get(change_url(record)).content.decode()
    for row in (root, parent, child, sibling, again):
        assert (
            f'<a href="{change_url(row)}">{row.task_name}</a> <code>{row.task_id}</code>' in content
        )
    # The periodic task that sent it, and all its runs.
    assert reverse("admin:django_taskq_periodictask_change", args=[periodic.pk]) in content
    assert "?periodic_task_name=nightly" in content
    # A retry of a row retention pruned names the id it cannot link.
    assert "<code>gone-1</code> (no history row: pruned, or not recorded)" in content
    assert "<code>grp-1</code>" in content


def test_long_lists_are_cut_with_a_link_to_all(admin_client):
    record = make_record(task_id="fan-out")
    for i in range(SHOWN + 5):
        make_record(task_id=f"kid-{i:03d}", parent_id="fan-out")
    with CaptureQueriesContext(connection) as many:
        content = admin_client.get(change_url(record)).content.decode()
    assert content.count("<code>kid-") == SHOWN
    assert "?parent_id=fan-out" in content and "All of them in the list" in content
    few = make_record(task_id="small")
    make_record(task_id="only-kid", parent_id="small")
    with CaptureQueriesContext(connection) as one:
        admin_client.get(change_url(few))
    assert len(one) == len(many)


def test_periodic_task_since_deleted(admin_client):
    record = make_record(periodic_task_name="removed-one")
    content = admin_client.get(change_url(record)).content.decode()
    assert "removed-one (deleted)" in content


@pytest.mark.parametrize(
    ("progress", "state", "expected"),
    [
        ({"current": 3, "total": 10}, "PROGRESS", '<progress max="1000" value="300">3 / 10 (30%)'),
        ({"done": 1, "total": 4}, "STARTED", '<progress max="1000" value="250">1 / 4 (25%)'),
        ({"percent": 42}, "STARTED", '<progress max="1000" value="420">42%'),
        ({"stage": "download"}, "STARTED", "&quot;stage&quot;: &quot;download&quot;"),
        ({"current": 3, "total": 10}, "SUCCESS", "&quot;current&quot;: 3"),  # over: raw meta
    ],
)
def test_progress(admin_client, progress, state, expected):
    record = make_record(state=state, progress=progress)
    content = admin_client.get(change_url(record)).content.decode()
    assert expected in content
    if state == "SUCCESS" or "stage" in progress:
        assert "<progress" not in content


def test_view_only_user_reads_the_page(client, user_with):
    record = failed_record()
    client.force_login(user_with("view"))
    response = client.get(change_url(record))
    assert response.status_code == 200
    assert record.task_id in response.content.decode()
    client.logout()
    nobody = user_with(username="nobody")
    assert client.login(username=nobody.username, password=PASSWORD)
    assert client.get(change_url(record)).status_code == 403


def test_parse_progress_and_seconds():
    assert parse_progress({"current": 5, "total": 0}) is None
    assert parse_progress({"current": True, "total": 2}) is None
    assert parse_progress({"percent": 250}).fraction == 1.0
    assert parse_progress([1, 2]) is None
    assert [seconds(v) for v in (None, 0.0123, 12.34, 125, 7322)] == [
        "-",
        "0.012 s",
        "12.3 s",
        "2 min 05 s",
        "2 h 02 min",
    ]
