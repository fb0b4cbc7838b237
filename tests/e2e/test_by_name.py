"""``send_task`` (a task sent by name) and ``get_task_logger``, as Celery users write them."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import send_task
from django_taskq.broker import keys
from tests.testapp.tasks import logged, task_logger


def test_send_task_runs_a_task_by_its_name(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = send_task("tests.testapp.tasks.add", args=[2, 3], priority=7)
    assert result.get(timeout=10) == 5
    assert result.task_name == "tests.testapp.tasks.add"


def test_send_task_sends_a_name_only_the_workers_know_even_when_eager(broker: Any) -> None:
    with override_settings(TASKQ_TASK_ALWAYS_EAGER=True):
        result = send_task("billing.tasks.invoice", kwargs={"n": 1}, queue="billing", countdown=0)
    [(_, fields)] = broker.xrange(keys.stream("billing", 5))
    body = json.loads(fields[b"b"])
    assert (body["id"], body["task"], body["kwargs"]) == (
        result.id,
        "billing.tasks.invoice",
        {"n": 1},
    )


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: send_task(""), "name must be a task's registered name"),
        (lambda: send_task("x.y", args="ab"), "args must be a list or tuple"),
        (lambda: send_task("x.y", kwargs=[1]), "kwargs must be a dict"),
        (lambda: send_task("tests.testapp.tasks.add", args=[1]), "missing a required argument"),
    ],
)
def test_send_task_refuses_bad_input_naming_it(broker: Any, call: Any, fragment: str) -> None:
    with pytest.raises(TypeError, match=fragment):
        call()


def test_task_logger_records_name_the_running_task(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tests.testapp.tasks"):
        result = logged.apply(("inside",))
        task_logger.warning("outside")
    inside, outside = caplog.records
    assert (inside.task_name, inside.task_id) == ("tests.testapp.tasks.logged", result.id)  # type: ignore[attr-defined]
    assert inside.getMessage() == f"tests.testapp.tasks.logged[{result.id}]: inside"
    assert (outside.task_name, outside.task_id) == ("???", "???")  # type: ignore[attr-defined]
    assert outside.getMessage() == "outside"


def test_task_logger_in_a_worker_s_output(start_worker: Any) -> None:
    worker = start_worker("-P", "solo")
    result = logged.delay("from the worker")
    assert result.get(timeout=10) == "from the worker"
    worker.wait_for_line(f"tests.testapp.tasks.logged[{result.id}]: from the worker")


def test_an_expected_error_is_logged_without_a_traceback(start_worker: Any) -> None:
    from django_taskq.exceptions import TimeoutError as TaskqTimeout
    from tests.testapp.tasks import expected_failure, fail

    worker = start_worker("-P", "solo", "-l", "INFO")
    expected = expected_failure.delay("missing")
    with pytest.raises(KeyError):
        expected.get(timeout=10)
    worker.wait_for_line(f"[{expected.id}] raised an expected KeyError('missing')")
    unexpected = fail.delay()
    with pytest.raises(Exception) as caught:
        unexpected.get(timeout=10)
    assert not isinstance(caught.value, TaskqTimeout)
    worker.wait_for_line(f"[{unexpected.id}] failed")
    # Only the unexpected failure printed a traceback.
    assert worker.output.count("Traceback (most recent call last)") == 1, worker.output
