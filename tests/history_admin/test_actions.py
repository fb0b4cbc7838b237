"""Retry, revoke and terminate from the history list, on the real Redis (and real workers).

Permissions follow Django's: view = read, change = act, delete = delete;
every POST carries Django's CSRF token like any admin form.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.history import admin_actions
from django_taskq.history.resend import RETRY_OF_HEADER, retry_envelope
from django_taskq.messages import Envelope
from django_taskq.result import AsyncResult
from tests.testapp.tasks import record_slow

from .conftest import failed_record, make_record

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_taskq_taskrecord_changelist")


def act(client: Client, action: str, *records: Any, **extra: Any) -> Any:
    data = {"action": action, "_selected_action": [r.pk for r in records], **extra}
    return client.post(CHANGELIST, data, follow=True)


def queued(broker: Any, queue: str = "default") -> list[dict[str, Any]]:
    """Bodies of the ready messages of ``queue``, every priority."""
    found = []
    for stream in keys.queue_streams(queue):
        for _entry_id, fields in broker.xrange(stream):
            found.append(json.loads(fields[b"b"]))
    return found


def revoked_ids(broker: Any, queue: str = "default") -> set[str]:
    return {m.decode() for m in broker.zrange(keys.revoked(queue), 0, -1)}


# -- retry -----------------------------------------------------------------------------


def test_retry_sends_a_new_task_with_the_same_call(admin_client, broker):
    old = failed_record(args=[2, 3], options={"queue": "reports", "priority": 8})
    response = act(admin_client, "retry_tasks", old)
    [body] = queued(broker, "reports")
    assert body["id"] != old.task_id
    assert (body["task"], body["args"], body["kwargs"], body["priority"]) == (
        "tests.testapp.tasks.add",
        [2, 3],
        {},
        8,
    )
    assert body["headers"][RETRY_OF_HEADER] == old.task_id
    assert body["retries"] == 0 and body["eta"] is None
    content = response.content.decode()
    assert "Sent 1 task again as a new task:" in content
    # The new id links to its history row (written by the recorder moments later).
    link = reverse("admin:django_taskq_taskrecord_by_task_id", args=[body["id"]])
    assert f'<a href="{link}">{body["id"]}</a>' in content


def test_retry_refuses_other_states_and_rows_without_a_message(admin_client, broker):
    done = make_record(task_id="done-1", state="SUCCESS", body='{"id": "done-1"}')
    running = make_record(task_id="run-1", state="STARTED")
    big = failed_record(body="")
    pickled = failed_record(body="p:gASVAAAAAAAAAAB9lC4=")
    response = act(admin_client, "retry_tasks", done, running, big, pickled)
    content = response.content.decode()
    assert queued(broker) == []
    assert "it is SUCCESS; only failed, revoked or dead-lettered tasks can be retried" in content
    assert "it is STARTED; only failed" in content
    assert "its message was not kept (larger than TASKQ_HISTORY_BODY_LIMIT" in content
    assert "its kept message cannot be read: message is pickled" in content
    assert "again as a new task" not in content


def test_retry_of_revoked_and_dead_lettered_rows(admin_client, broker):
    revoked = failed_record(state="REVOKED")
    dead = failed_record(state="RECEIVED", dead_lettered=True)
    act(admin_client, "retry_tasks", revoked, dead)
    retry_of = {body["headers"][RETRY_OF_HEADER] for body in queued(broker)}
    assert retry_of == {revoked.task_id, dead.task_id}


def test_a_repeated_retry_request_queues_one_retry(admin_client, broker):
    old = failed_record()
    act(admin_client, "retry_tasks", old)
    response = act(admin_client, "retry_tasks", old)
    assert len(queued(broker)) == 1
    assert "it was sent again moments ago" in response.content.decode()


def test_retry_envelope_keeps_the_expiry_window_and_drops_follow_ups():
    from tests.testapp.tasks import add

    link = add.s(10)
    old = failed_record(options={"expires": 60, "countdown": 30, "link": link, "parent_id": "p-1"})
    old_envelope = Envelope.decode(old.body)
    assert old_envelope.link
    now = old_envelope.sent_at + 3600
    new = retry_envelope(old, now=now)
    assert new.eta is None
    assert new.expires == pytest.approx(now + 30)  # 60 s after sending, 30 s after its ETA
    assert new.link == [] and new.chord is None and new.group_id is None
    assert new.parent_id == "p-1"
    assert new.root_id == old_envelope.root_id


def test_retried_task_really_runs(admin_client, start_plain_worker):
    old = failed_record(args=[20, 22])
    act(admin_client, "retry_tasks", old)
    # Read the new message before a worker can take it (a run deletes it from its queue).
    [new_id] = [m.new_id for m in _sent_again(old)]
    start_plain_worker("-P", "solo")
    assert AsyncResult(new_id).get(timeout=15) == 42


def _sent_again(old: Any) -> list[Any]:
    from django_taskq.broker.connection import get_broker
    from django_taskq.history.resend import Resent

    return [
        Resent(old.task_id, body["id"])
        for body in queued(get_broker())
        if body["headers"].get(RETRY_OF_HEADER) == old.task_id
    ]


# -- retry of msgpack and compressed messages (kept as "base64:..." text) -----------------
CODED = [("msgpack", None), ("json", "zlib"), ("msgpack", "zstd")]


@pytest.mark.parametrize("serializer, compression", CODED)
def test_retry_sends_a_coded_message_again_in_its_own_form(
    admin_client, broker, settings, serializer, compression
):
    settings.TASKQ_COMPRESSION_MIN_SIZE = 0  # compress however small (as body_of does)
    codecs = {"serializer": serializer, "compression": compression}
    old = failed_record("tests.testapp.tasks.msgpack_types", [[(1, "two")]], codecs=codecs)
    assert old.body.startswith("base64:")
    response = act(admin_client, "retry_tasks", old)
    assert "Sent 1 task again as a new task:" in response.content.decode()
    [(_, fields)] = broker.xrange(keys.stream("default", 5))
    content = f"{serializer}+{compression}" if compression else serializer
    assert fields[b"b"].startswith(f"{content}:".encode())
    new = Envelope.decode(fields[b"b"], ["json", "msgpack", "zlib", "zstd"])
    assert new.id != old.task_id and new.headers[RETRY_OF_HEADER] == old.task_id
    expected = [(1, "two")] if serializer == "msgpack" else [[1, "two"]]
    assert (new.task, new.args) == ("tests.testapp.tasks.msgpack_types", [expected])


def test_retry_refuses_a_kept_message_it_cannot_decode_and_says_why(
    admin_client, broker, monkeypatch
):
    import sys

    zstd = failed_record(codecs={"serializer": "msgpack", "compression": "zstd"})
    cut = failed_record(codecs={"compression": "zlib"})
    cut.body = "base64:" + base64.b64encode(base64.b64decode(cut.body[7:])[:-6]).decode()
    cut.save()
    broken = failed_record(body="base64:not base64!")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # not installed in the web process
    content = act(admin_client, "retry_tasks", zstd, cut, broken).content.decode()
    assert queued_count(broker) == 0
    assert (
        "its kept message cannot be read: msgpack+zstd body: zstd needs the zstandard package: "
        "pip install django-taskq-streams[zstd] (not installed in this process"
    ) in content
    assert "its kept message cannot be read: message body: zlib data is truncated" in content
    assert "its kept message cannot be read: kept message body is not valid base64" in content


def test_retried_msgpack_task_really_runs_with_the_same_arguments(
    admin_client, start_plain_worker, settings
):
    settings.TASKQ_COMPRESSION_MIN_SIZE = 0
    codecs = {"serializer": "msgpack", "compression": "zlib"}
    old = failed_record("tests.testapp.tasks.msgpack_types", [[(1, "two"), b"\x00"]], codecs=codecs)
    act(admin_client, "retry_tasks", old)
    [(_, fields)] = get_broker().xrange(keys.stream("default", 5))
    assert fields[b"b"].startswith(b"msgpack+zlib:")
    new_id = Envelope.decode(fields[b"b"], ["msgpack", "zlib"]).id
    start_plain_worker("-P", "solo", env={"TASKQ_TEST_ACCEPT_CONTENT": "json,msgpack,zlib"})
    out = AsyncResult(new_id).get(timeout=15)
    assert out["types"] == ["tuple", "bytes"]


def test_the_detail_page_shows_a_coded_message_decoded(admin_client):
    codecs = {"serializer": "msgpack", "compression": "zlib"}
    record = failed_record(args=[4, 5], codecs=codecs)
    url = reverse("admin:django_taskq_taskrecord_change", args=[record.pk])
    content = admin_client.get(url).content.decode()
    assert "Sent as msgpack+zlib; shown decoded." in content
    assert "&quot;task&quot;: &quot;tests.testapp.tasks.add&quot;" in content
    assert "&quot;args&quot;: [\n    4,\n    5\n  ]" in content


def queued_count(broker: Any) -> int:
    return sum(broker.xlen(s) for s in keys.queue_streams("default"))


def test_retry_says_when_redis_is_unreachable(admin_client, settings):
    old = failed_record()
    settings.TASKQ_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.TASKQ_PUBLISH_TIMEOUT = 0.5
    response = act(admin_client, "retry_tasks", old)
    assert "Redis could not be reached, so 1 task(s) were not sent" in response.content.decode()


def test_actions_are_bounded(admin_client, broker, monkeypatch):
    monkeypatch.setattr(admin_actions, "ACTION_LIMIT", 2)
    rows = [failed_record() for _ in range(3)]
    response = act(admin_client, "retry_tasks", *rows)
    assert "Select at most 2 tasks for this action" in response.content.decode()
    assert queued(broker) == []
    response = act(admin_client, "delete_selected", *rows)
    assert "Select at most 2 tasks to delete" in response.content.decode()
    assert type(rows[0]).objects.count() == 3


# -- revoke and terminate ----------------------------------------------------------------


def test_revoke_writes_the_revocation_and_leaves_finished_tasks_alone(admin_client, broker):
    pending = make_record(task_id="p-1", state="PENDING")
    running = make_record(task_id="r-1", state="STARTED")
    done = make_record(task_id="d-1", state="SUCCESS")
    response = act(admin_client, "revoke_tasks", pending, running, done)
    assert revoked_ids(broker) == {"p-1", "r-1"}
    assert AsyncResult("p-1").state == states.REVOKED
    content = response.content.decode()
    assert "Revoked 2 tasks:" in content
    assert "1 task had finished already and was left alone:" in content


def test_terminate_kills_the_running_task(admin_client, broker, start_plain_worker):
    start_plain_worker("-c", "1")
    result = record_slow.delay("term", "x", 30)
    deadline = time.monotonic() + 15
    while broker.lrange("term", 0, -1) != [b"start:x"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broker.lrange("term", 0, -1) == [b"start:x"]
    # The recorder's row for it, as it would read while the task runs.
    row = make_record(task_id=result.id, task_name=record_slow.name, state="STARTED")
    response = act(admin_client, "terminate_tasks", row)
    content = response.content.decode()
    assert "Revoked 1 task:" in content
    assert "1 of them was running (by its record): its worker kills it." in content
    with pytest.raises(Exception, match="revoked"):
        result.get(timeout=15)
    assert result.state == states.REVOKED
    assert broker.lrange("term", 0, -1) == [b"start:x"]  # it never finished


# -- permissions and CSRF -------------------------------------------------------------------


def test_view_only_users_see_no_actions_and_cannot_act(client, broker, user_with):
    old = failed_record()
    client.force_login(user_with("view"))
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert 'name="action"' not in response.content.decode()
    for action in ("retry_tasks", "revoke_tasks", "terminate_tasks", "delete_selected"):
        act(client, action, old)
    assert queued(broker) == [] and revoked_ids(broker) == set()
    assert type(old).objects.filter(pk=old.pk).exists()


def test_change_users_act_but_do_not_delete(client, broker, user_with):
    old = failed_record()
    client.force_login(user_with("view", "change"))
    content = client.get(CHANGELIST).content.decode()
    for action in ("retry_tasks", "revoke_tasks", "terminate_tasks"):
        assert f'value="{action}"' in content
    assert 'value="delete_selected"' not in content
    act(client, "retry_tasks", old)
    assert len(queued(broker)) == 1
    # Change permission acts on tasks; it never edits a row.
    change = reverse("admin:django_taskq_taskrecord_change", args=[old.pk])
    assert client.post(change, {"task_name": "x"}).status_code == 403


def test_actions_need_the_csrf_token(broker, django_user_model):
    user = django_user_model.objects.create_superuser("csrf", "c@example.com", "pw")
    old = failed_record()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    data = {"action": "retry_tasks", "_selected_action": [old.pk]}
    assert client.post(CHANGELIST, data).status_code == 403
    assert queued(broker) == []
    client.get(CHANGELIST)
    token = client.cookies["csrftoken"].value
    response = client.post(CHANGELIST, {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert len(queued(broker)) == 1
