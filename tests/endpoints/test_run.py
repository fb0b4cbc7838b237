"""run/, run-one/, status/ and purge/ end to end: a real burst worker, real Redis, the database.

A request to run/ starts ``taskq_worker --burst`` as a child process and
answers once it stopped, so these tests see what a scheduler calling the
endpoint would: the tasks' results in Redis, the counts in the answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from django_taskq.endpoints import burst
from django_taskq.history.models import TaskRecord
from django_taskq.monitor.queues import queue_stats
from django_taskq.result import AsyncResult
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "run-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Client:
    settings.TASKQ_AUTH_HANDLERS = ["django_taskq.endpoints.auth.SharedSecretAuth"]
    settings.TASKQ_AUTH_HANDLER_OPTIONS = {"TOKEN": TOKEN}
    # The burst worker the view starts uses this test's database, as the web process does.
    monkeypatch.setenv("TASKQ_TEST_DB_NAME", str(connection.settings_dict["NAME"]))
    return Client(raise_request_exception=True)


def _ready(queue: str = "default") -> int:
    return sum(s.ready for s in queue_stats([queue]))


def test_run_runs_everything_queued_and_counts_what_failed(client: Client) -> None:
    sent = [tasks.add.delay(i, i) for i in range(5)]
    failing = tasks.fail.delay("on purpose")
    answer = client.post("/tasks/run/", headers=BEARER)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"processed": 6, "failed": 1, "timed_out": False}
    assert [r.get(timeout=1) for r in sent] == [0, 2, 4, 6, 8]
    assert failing.state == "FAILURE"
    assert _ready() == 0


def test_run_with_max_tasks_leaves_the_rest_queued(client: Client) -> None:
    sent = [tasks.add.delay(i, 1) for i in range(4)]
    answer = client.post("/tasks/run/", {"max_tasks": "3"}, headers=BEARER)
    assert answer.json() == {"processed": 3, "failed": 0, "timed_out": False}
    assert sorted(r.state for r in sent) == ["PENDING", "SUCCESS", "SUCCESS", "SUCCESS"]
    assert _ready() == 1


def test_run_takes_only_the_queues_named(client: Client) -> None:
    elsewhere = tasks.add.apply_async((1, 2), queue="reports")
    here = tasks.add.delay(3, 4)
    answer = client.post("/tasks/run/", {"queue_name": "reports"}, headers=BEARER)
    assert answer.json()["processed"] == 1
    assert (elsewhere.get(timeout=1), here.state) == (3, "PENDING")


def test_run_one_runs_one_and_says_when_there_was_none(client: Client) -> None:
    first, second = tasks.add.delay(1, 1), tasks.add.delay(2, 2)
    answer = client.post("/tasks/run-one/", headers=BEARER)
    assert answer.json() == {"processed": True, "failed": False, "timed_out": False}
    assert sorted([first.state, second.state]) == ["PENDING", "SUCCESS"]
    assert client.post("/tasks/run-one/", headers=BEARER).json()["processed"] is True
    empty = client.post("/tasks/run-one/", headers=BEARER)
    assert empty.json() == {"processed": False, "failed": False, "timed_out": False}


def test_a_run_past_its_timeout_is_stopped_and_loses_nothing(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TASKQ_ENDPOINT_RUN_TIMEOUT = 3.0
    monkeypatch.setattr(burst, "STOP_GRACE", 0.5)  # warm stop, then cold at once
    long = tasks.sleep_then.delay(60, "late")
    answer = client.post("/tasks/run/", headers=BEARER)
    assert answer.json() == {"processed": 0, "failed": 0, "timed_out": True}
    # The cold stop handed the message back: it is queued again, not lost or run.
    assert long.state in ("PENDING", "RECEIVED", "STARTED")
    assert _ready() == 1


def test_task_status_shows_the_result_record(client: Client) -> None:
    done = tasks.add.delay(20, 22)
    failed = tasks.fail.delay("bad input")
    assert client.post("/tasks/run/", headers=BEARER).json()["processed"] == 2

    answer = client.get(f"/tasks/status/{done.id}/", headers=BEARER)
    task = answer.json()["task"]
    assert (task["id"], task["state"], task["result"]) == (done.id, "SUCCESS", 42)
    assert task["task_name"] == "tests.testapp.tasks.add"
    assert task["worker"] and task["date_done"]

    task = client.get(f"/tasks/status/{failed.id}/", headers=BEARER).json()["task"]
    assert task["state"] == "FAILURE"
    assert task["result"]["exc_type"] == "ValueError"
    assert "bad input" in task["traceback"]

    missing = client.get("/tasks/status/no-such-task/", headers=BEARER)
    assert missing.status_code == 404
    assert "No task 'no-such-task'" in missing.json()["error"]


def test_queue_status_counts_what_waits(client: Client) -> None:
    for i in range(3):
        tasks.add.delay(i, i)
    tasks.add.apply_async((1, 1), queue="reports", countdown=600)
    everything = client.get("/tasks/status/", headers=BEARER).json()["queues"]
    by_name = {q["name"]: q for q in everything}
    assert by_name["default"]["ready"] == 3
    assert by_name["reports"]["delayed"] == 1
    only = client.get("/tasks/status/?queue_name=reports", headers=BEARER).json()["queues"]
    assert [q["name"] for q in only] == ["reports"]


def test_purge_deletes_history_of_tasks_ended_before_the_cutoff(client: Client) -> None:
    now = timezone.now()
    for name, ended in (("old", now - dt.timedelta(days=10)), ("new", now), ("running", None)):
        TaskRecord.objects.create(task_id=name, task_name="t", state="SUCCESS", finished_at=ended)
    answer = client.post("/tasks/purge/", {"days": "7"}, headers=BEARER)
    assert answer.json() == {"deleted": 1}
    assert sorted(TaskRecord.objects.values_list("task_id", flat=True)) == ["new", "running"]
    assert client.post("/tasks/purge/", {"days": "0"}, headers=BEARER).json() == {"deleted": 1}


@pytest.mark.parametrize(
    ("path", "data", "named"),
    [
        ("/tasks/run/", {"max_tasks": "-1"}, "max_tasks must be a whole number"),
        ("/tasks/run/", {"max_tasks": "many"}, "max_tasks must be a whole number"),
        ("/tasks/run/", {"queue_name": "a b"}, "queue_name: queue must be a name"),
        ("/tasks/run-one/", {"queue_name": "{x}"}, "queue_name: queue must be a name"),
        ("/tasks/purge/", {"days": "soon"}, "days must be a whole number"),
    ],
)
def test_bad_parameters_get_an_error_naming_them(
    client: Client, path: str, data: dict[str, str], named: str
) -> None:
    answer = client.post(path, data, headers=BEARER)
    assert answer.status_code == 400
    assert named in answer.json()["error"]


def test_wrong_methods_are_refused(client: Client) -> None:
    assert client.get("/tasks/run/", headers=BEARER).status_code == 405
    assert client.post("/tasks/status/", headers=BEARER).status_code == 405


def test_a_worker_that_cannot_start_is_an_error_with_its_output(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKQ_WORKER_HEARTBEAT_TIMEOUT", "not-a-number")
    answer = client.post("/tasks/run/", headers=BEARER)
    assert answer.status_code == 500
    body = answer.json()
    assert "taskq_worker --burst exited 1" in body["error"]
    assert "not-a-number" in body["output"]
    assert AsyncResult("x").state == "PENDING"  # nothing else touched


def test_run_works_on_cluster_and_sentinel(client: Client, topology: Any) -> None:
    """The burst worker inherits the broker the web process uses, whatever its kind."""
    sent = [tasks.add.apply_async((i, 1), queue=q) for i, q in enumerate(("default", "reports"))]
    answer = client.post("/tasks/run/", {"queue_name": "default,reports"}, headers=BEARER)
    assert answer.json() == {"processed": 2, "failed": 0, "timed_out": False}
    assert [r.get(timeout=1) for r in sent] == [1, 2]
    status = client.get(f"/tasks/status/{sent[1].id}/", headers=BEARER).json()["task"]
    assert status["state"] == "SUCCESS"


def test_execute_runs_until_the_task_has_ended_and_not_again(client: Client) -> None:
    before = tasks.add.delay(1, 1)
    target = tasks.add.delay(2, 2)
    after = [tasks.sleep_then.delay(0.3, i) for i in range(20)]  # 6 s to drain them all
    answer = client.post(f"/tasks/execute/{target.id}/", headers=BEARER)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["task"]["state"], body["task"]["result"]) == ("SUCCESS", 4)
    assert before.state == "SUCCESS"  # queued first, so run first
    assert 2 <= body["processed"] < 2 + len(after)  # stopped once the target ended
    assert _ready() > 0

    again = client.post(f"/tasks/execute/{target.id}/", headers=BEARER).json()
    assert (again["processed"], again["task"]["state"]) == (0, "SUCCESS")


def test_execute_answers_the_state_when_the_task_is_not_in_the_queues_read(
    client: Client,
) -> None:
    target = tasks.add.apply_async((1, 2), queue="reports")
    answer = client.post(
        f"/tasks/execute/{target.id}/", {"queue_name": "default"}, headers=BEARER
    ).json()
    assert (answer["task"]["state"], answer["processed"], answer["timed_out"]) == (
        "PENDING",
        0,
        False,
    )
    assert (
        client.post(f"/tasks/execute/{target.id}/", headers=BEARER).json()["task"]["result"] == 3
    )  # without queue_name: every queue


def test_execute_refuses_unknown_ids_and_allow_retry(client: Client) -> None:
    missing = client.post("/tasks/execute/nope/", headers=BEARER)
    assert missing.status_code == 404
    sent = tasks.add.delay(1, 1)
    retry = client.post(f"/tasks/execute/{sent.id}/", {"allow_retry": "true"}, headers=BEARER)
    assert retry.status_code == 400
    assert "allow_retry is not supported" in retry.json()["error"]
    assert sent.state == "PENDING"


@pytest.mark.parametrize(
    "stored",
    [b"\xff\xfe not json", b"[1, 2]", b'{"result": 3}', b'{"status": 7}', b"null"],
    ids=["not-utf8", "a-list", "no-status", "status-not-text", "null"],
)
def test_a_record_that_cannot_be_read_is_an_error_naming_its_key(
    client: Client, stored: bytes
) -> None:
    from django_taskq.broker import keys
    from django_taskq.broker.connection import get_backend

    sent = tasks.add.delay(1, 1)
    get_backend().set(keys.result(sent.id), stored)
    for answer in (
        client.get(f"/tasks/status/{sent.id}/", headers=BEARER),
        client.post(f"/tasks/execute/{sent.id}/", headers=BEARER),
    ):
        assert answer.status_code == 500, answer.content
        error = answer.json()["error"]
        assert sent.id in error and keys.result(sent.id) in error and "forget()" in error
    assert _ready() == 1  # execute/ ran nothing on a record it could not read
