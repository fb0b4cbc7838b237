"""``@shared_task(base=MyTask)``: a Task subclass's hooks and class-level options, in a worker."""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq import Task, shared_task
from tests.testapp.tasks import audited


def hooks(broker: Any, task_id: str) -> list[str]:
    return [h.decode() for h in broker.lrange(f"hooks:{task_id}", 0, -1)]


def test_a_base_class_s_hooks_run_in_the_worker(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    ok = audited.delay("fine")
    assert ok.get(timeout=10) == "fine"
    assert hooks(broker, ok.id) == ["before_start", "on_success:fine", "after_return:SUCCESS:True"]

    failed = audited.delay("fail")
    with pytest.raises(ValueError, match="asked to fail"):
        failed.get(timeout=10)
    assert hooks(broker, failed.id) == [
        "before_start",
        "on_failure:ValueError:True",
        "after_return:FAILURE:True",
    ]

    retried = audited.delay("retry")
    assert retried.get(timeout=10) == "retry"
    assert hooks(broker, retried.id) == [
        "before_start",
        "on_retry",
        "after_return:RETRY:True",
        "before_start",
        "on_success:retry",
        "after_return:SUCCESS:True",
    ]

    raising = audited.delay("hook-raises")
    assert raising.get(timeout=10) == "hook-raises"  # the hook's error is only logged
    exiting = audited.delay("hook-exits")
    assert exiting.get(timeout=10) == "hook-exits"  # sys.exit() in a hook ends neither
    assert audited.delay("fine").get(timeout=10) == "fine"  # the worker still serves


def test_class_attributes_are_option_defaults_and_shared_task_options_win() -> None:
    assert audited.max_retries == 1  # Audited.max_retries
    assert isinstance(audited, Task) and type(audited).__name__ == "Audited"

    class Patient(Task):
        max_retries = 9
        default_retry_delay = 2

    def job() -> None: ...

    mine = Patient(job, name="tests.patient.a")
    assert (mine.max_retries, mine.default_retry_delay) == (9, 2.0)
    theirs = Patient(job, name="tests.patient.b", max_retries=3)
    assert theirs.max_retries == 3
    assert Task(job, name="tests.plain").hooks == frozenset()  # no hooks: nothing extra per run
    assert mine.hooks == frozenset()


def test_base_must_be_a_task_subclass() -> None:
    with pytest.raises(TypeError, match="base must be a subclass of django_taskq.Task"):
        shared_task(base=object)
