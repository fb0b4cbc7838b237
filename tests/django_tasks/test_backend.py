"""Django's tasks framework on TaskqBackend, against a real worker.

``django.tasks`` on Django 6.0 and newer (tox's py312-django60 and
py313-django61), and the ``django-tasks`` backport on Django 5.2 (the main
suite, which installs it with the dev extra). The tasks live in
tests/testapp/jobs.py, which no app imports, so the worker finds them by
their path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from django_taskq.tasks_framework import PACKAGE, first, part

if PACKAGE is None:  # before importing the backend, which needs it
    pytest.skip(
        "neither django.tasks (Django 6.0+) nor the django-tasks backport is installed",
        allow_module_level=True,
    )

import importlib

from django.test import override_settings

framework = importlib.import_module(PACKAGE)
default_task_backend, task_backends = framework.default_task_backend, framework.task_backends
TaskResultStatus = part("base").TaskResultStatus
InvalidTask = first("exceptions", "InvalidTask", "InvalidTaskError")
TaskResultDoesNotExist = part("exceptions").TaskResultDoesNotExist
task_enqueued = part("signals").task_enqueued

from django_taskq import AsyncResult  # noqa: E402
from django_taskq.backends import TaskqBackend  # noqa: E402
from django_taskq.broker import keys  # noqa: E402
from django_taskq.django_tasks import HEADER, priority_of  # noqa: E402
from django_taskq.messages import Envelope  # noqa: E402
from tests.testapp import jobs  # noqa: E402
from tests.testapp.tasks import add  # noqa: E402

pytestmark = pytest.mark.e2e


def _finished(result: Any, timeout: float = 15) -> Any:
    """Block on the task's result (django_taskq wakes on it; no polling), then read it back."""
    AsyncResult(result.id).get(timeout=timeout, propagate=False)
    result.refresh()
    return result


def test_the_backend_says_what_it_supports() -> None:
    backend = task_backends["default"]
    assert isinstance(backend, TaskqBackend)
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_enqueue_runs_on_the_worker_and_the_result_reads_back(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = jobs.multiply.enqueue(6, 7)
    assert result.status == TaskResultStatus.READY and result.args == [6, 7]
    assert result.enqueued_at is not None and result.backend == "default"
    _finished(result)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert len(result.worker_ids) == 1 and result.worker_ids[0].startswith("taskq@")
    fresh = jobs.multiply.get_result(result.id)
    assert (fresh.status, fresh.return_value, fresh.args) == (result.status, 42, [6, 7])
    assert fresh.task.func is jobs.multiply.func


def test_a_failure_is_failed_with_its_error(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = _finished(jobs.broken.enqueue("no such user"))
    assert result.status == TaskResultStatus.FAILED and result.is_finished
    [error] = result.errors
    assert error.exception_class is ValueError
    assert "raise ValueError(message)" in error.traceback and "no such user" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value


def test_takes_context_gets_the_result_and_the_attempt(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = _finished(jobs.who_am_i.enqueue(label="x"))
    assert result.return_value == {"id": result.id, "attempt": 1, "label": "x"}


def test_an_async_task_runs(start_worker: Any) -> None:
    start_worker("-P", "solo")
    assert _finished(jobs.async_double.enqueue(21)).return_value == 42


def test_aenqueue_and_aget_result() -> None:
    async def go() -> tuple[Any, Any]:
        sent = await jobs.multiply.aenqueue(2, 3)
        return sent, await jobs.multiply.aget_result(sent.id)

    sent, read = asyncio.run(go())
    assert sent.status == read.status == TaskResultStatus.READY
    assert read.args == [2, 3] and read.enqueued_at is not None


def test_unknown_ids_do_not_exist() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("no-such-id")
    with pytest.raises(TaskResultDoesNotExist):
        asyncio.run(default_task_backend.aget_result("no-such-id"))


def test_run_after_is_the_eta(start_worker: Any, broker: Any) -> None:
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    result = jobs.stamp.using(run_after=due).enqueue()
    score = broker.zscore(keys.delayed("default"), broker.zrange(keys.delayed("default"), 0, 0)[0])
    assert score == pytest.approx(due.timestamp() * 1000, abs=1)
    assert jobs.stamp.get_result(result.id).status == TaskResultStatus.READY
    start_worker("-P", "solo")
    _finished(result)
    assert result.return_value >= due.timestamp() and result.started_at >= due


def test_priority_maps_monotonically_onto_0_to_9() -> None:
    mapped = [priority_of(p) for p in range(-100, 101)]
    assert mapped[0] == 0 and mapped[-1] == 9 and priority_of(0) == 5
    assert mapped == sorted(mapped) and set(mapped) == set(range(10))


def test_queue_name_and_priority_choose_the_stream(broker: Any) -> None:
    jobs.send_mail.enqueue("a@example.com")  # queue_name="emails", priority=100
    assert broker.xlen(keys.stream("emails", 9)) == 1
    jobs.multiply.using(priority=-100).enqueue(1, 1)
    assert broker.xlen(keys.stream("default", 0)) == 1


def test_queues_limits_the_queue_names() -> None:
    limited = {"default": {"BACKEND": "django_taskq.backends.TaskqBackend", "QUEUES": ["emails"]}}
    with (
        override_settings(TASKS=limited),
        pytest.raises(InvalidTask, match="Queue 'default' is not valid"),
    ):
        jobs.multiply.using(backend="default").enqueue(1, 2)
    with pytest.raises(InvalidTask, match="queue_name 'a b'"):
        jobs.multiply.using(queue_name="a b")


def test_a_wrong_call_is_refused_naming_the_argument() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        jobs.multiply.enqueue(1, z=2)


def test_the_signals_are_sent(start_worker: Any, broker: Any) -> None:
    seen: list[Any] = []

    def on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((sender, task_result.id))

    task_enqueued.connect(on_enqueued)
    try:
        ok = jobs.multiply.enqueue(1, 2)
        bad = jobs.broken.enqueue("x")
    finally:
        task_enqueued.disconnect(on_enqueued)
    assert seen == [(TaskqBackend, ok.id), (TaskqBackend, bad.id)]
    start_worker("-P", "solo")
    _finished(ok)
    _finished(bad)
    noted = [json.loads(x) for x in broker.lrange(jobs.SIGNALS, 0, -1)]
    assert noted == [
        ["started", ok.id, "RUNNING", "TaskqBackend"],
        ["finished", ok.id, "SUCCESSFUL", "TaskqBackend"],
        ["started", bad.id, "RUNNING", "TaskqBackend"],
        ["finished", bad.id, "FAILED", "TaskqBackend"],
    ]


def test_a_django_task_and_a_shared_task_share_one_worker(start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "2")
    django_result = jobs.multiply.enqueue(3, 3)
    assert add.delay(4, 4).get(timeout=15) == 8
    assert _finished(django_result).return_value == 9


def test_a_message_naming_a_path_outside_the_apps_is_never_imported(
    start_worker: Any, broker: Any
) -> None:
    """Only a path inside an installed app is imported, whatever a message says."""
    from django_taskq.broker.publish import publish

    marked = {HEADER: "default"}
    publish(Envelope(id="outsider", task="tests.core.not_to_import.anything", headers=marked))
    publish(Envelope(id="elsewhere", task="json.dumps", args=[1], headers=marked))
    worker = start_worker("-P", "solo")
    for task_id in ("outsider", "elsewhere"):
        with pytest.raises(Exception, match="is not registered"):
            AsyncResult(task_id).get(timeout=15)
    assert "was imported because" not in worker.output
    assert broker.xlen(keys.dead("default")) == 2


@pytest.mark.skipif(not jobs.TAKES_OPTIONS, reason="@task(**options) is Django 6.1+")
def test_taskq_options_through_task_time_limit(start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1")
    result = _finished(jobs.too_slow.enqueue(), timeout=30)
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path.endswith("TimeLimitExceeded")


@pytest.mark.skipif(not jobs.TAKES_OPTIONS, reason="@task(**options) is Django 6.1+")
def test_taskq_options_through_task_autoretry(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = jobs.flaky_twice.enqueue("k1")
    assert AsyncResult(result.id).get(timeout=30) == 3
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 3
    assert result.attempts == 3


def test_the_backend_is_listed_by_django() -> None:
    assert isinstance(task_backends["default"], TaskqBackend)


def test_get_result_of_a_record_that_cannot_be_read_names_the_task_and_key() -> None:
    from django_taskq.broker.connection import get_backend
    from django_taskq.exceptions import DecodeError

    get_backend().set(keys.result("bad-django"), b"[]")
    with pytest.raises(DecodeError, match=r"'bad-django'.*forget\(\)"):
        task_backends["default"].get_result("bad-django")
