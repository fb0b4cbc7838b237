"""A Django task's attempts, read back: one error per failed attempt, one worker id per attempt.

Real workers run Django ``@task`` functions that retry (``autoretry_for``,
Django 6.1's ``@task(**options)``, or the django-tasks backport's on Django
5.2); ``get_result()`` reads the result record and the attempts list
(django_taskq/attempts.py) back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from django_taskq.tasks_framework import PACKAGE, part

if PACKAGE is None:  # before importing the backend, which needs it
    pytest.skip(
        "neither django.tasks (Django 6.0+) nor the django-tasks backport is installed",
        allow_module_level=True,
    )

from django_taskq import AsyncResult, states
from django_taskq.broker import keys
from tests.testapp import jobs
from tests.testapp.tasks import add, flaky

TaskResultStatus = part("base").TaskResultStatus

pytestmark = pytest.mark.e2e

#: Retrying a Django task needs @task(autoretry_for=...): Django 6.1, or the backport on 5.2.
retries = pytest.mark.skipif(not jobs.TAKES_OPTIONS, reason="@task(**options) is Django 6.1+")


def _tracebacks_say(result: Any, *texts: str) -> None:
    assert len(result.errors) == len(texts)
    for error, text in zip(result.errors, texts, strict=True):
        assert error.exception_class_path == "builtins.RuntimeError"
        assert error.exception_class is RuntimeError
        assert "Traceback (most recent call last)" in error.traceback
        assert f"RuntimeError: {text}" in error.traceback


@retries
def test_each_failed_attempt_is_an_error_and_each_attempt_names_its_worker(
    start_worker: Any, broker: Any
) -> None:
    """Two failures then a success: two errors, three worker ids, the first on another worker."""
    result = jobs.flaky_twice.enqueue("attempts-1")
    # The first attempt runs on "first@test", which stops after it; the two
    # others on "second@test": worker_ids says which worker ran which.
    first = start_worker("-P", "solo", "-n", "first@test", "--max-tasks", "1")
    assert first.wait(30) == 0
    assert AsyncResult(result.id).state == states.RETRY
    between = jobs.flaky_twice.get_result(result.id)
    assert between.status == TaskResultStatus.READY and between.worker_ids == ["first@test"]
    _tracebacks_say(between, "attempt 1 failed")

    start_worker("-P", "solo", "-n", "second@test")
    assert AsyncResult(result.id).get(timeout=30) == 3
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 3
    _tracebacks_say(result, "attempt 1 failed", "attempt 2 failed")
    assert result.worker_ids == ["first@test", "second@test", "second@test"]
    assert result.attempts == 3
    # The list lives as long as the record, and forget() deletes both.
    assert abs(broker.pttl(keys.attempts(result.id)) - broker.pttl(keys.result(result.id))) < 5000
    AsyncResult(result.id).forget()
    assert broker.exists(keys.result(result.id), keys.attempts(result.id)) == 0


@retries
def test_a_task_failing_every_attempt_has_an_error_per_attempt(start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1")
    result = jobs.always_fails.enqueue("attempts-2")  # max_retries=2: three attempts
    AsyncResult(result.id).get(timeout=30, propagate=False)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    _tracebacks_say(result, "attempt 1 failed", "attempt 2 failed", "attempt 3 failed")
    assert result.attempts == len(result.errors) == 3
    assert len(set(result.worker_ids)) == 1 and result.worker_ids[0].startswith("taskq@")
    read = asyncio.run(jobs.always_fails.aget_result(result.id))  # the same, awaited
    assert (read.worker_ids, read.errors) == (result.worker_ids, result.errors)


def test_a_run_cut_short_by_a_crash_is_an_attempt(start_worker: Any) -> None:
    """The prefork child dies in the first run; the message comes back; two starts, no error."""
    start_worker("-P", "prefork", "-c", "1")
    result = jobs.crash_once.enqueue("attempts-crash")
    assert AsyncResult(result.id).get(timeout=30) == 2
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.errors == []
    assert result.attempts == 2 and result.worker_ids[0] == result.worker_ids[1]


def test_a_failure_without_retries_is_one_error_and_one_worker(start_worker: Any) -> None:
    start_worker("-P", "threads", "-c", "2")
    result = jobs.broken.enqueue("once")
    AsyncResult(result.id).get(timeout=30, propagate=False)
    result.refresh()
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"]
    assert len(result.worker_ids) == 1


def test_a_shared_task_keeps_no_attempts_list(start_worker: Any, broker: Any) -> None:
    """A plain @shared_task's results are written as before: no list, the same record."""
    start_worker("-P", "solo")
    retried = flaky.delay("attempts-3", 2)  # fails twice, then returns its attempt number
    assert retried.get(timeout=30) == 3
    plain = add.delay(2, 3)
    assert plain.get(timeout=15) == 5
    for task_id in (retried.id, plain.id):
        assert broker.exists(keys.attempts(task_id)) == 0
    record = json.loads(broker.get(keys.result(retried.id)))
    assert (record["status"], record["retries"], record["result"]) == (states.SUCCESS, 2, 3)
    assert AsyncResult(retried.id).successful() and AsyncResult(plain.id).result == 5
