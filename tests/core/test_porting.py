"""What a project ported from Celery trips over first, caught before it runs.

- a task call with wrong arguments names every problem at once;
- ``CELERY_*`` settings left behind are named with their replacement;
- a TASKQ_BEAT_SCHEDULE entry with an unknown task or wrong arguments is
  reported by ``manage.py check`` (and so at ``taskq_beat``'s start);
- a naive ``eta`` warns, at the caller's line.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.utils import timezone

from django_taskq import celery_names
from django_taskq.arguments import problems
from django_taskq.checks import check_settings
from tests.testapp.tasks import add, echo

DOCS = Path(__file__).resolve().parents[2] / "docs"


# -- arguments -------------------------------------------------------------------
def test_a_wrong_call_names_the_unexpected_keyword_and_the_missing_argument() -> None:
    with pytest.raises(TypeError) as caught:
        add.delay(1, z=2)
    assert str(caught.value) == (
        "tests.testapp.tasks.add(x, y): unexpected keyword argument 'z'; "
        "missing a required argument: 'y'"
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((1, 2, 3), {}, ["too many positional arguments (3 given, it takes 2)"]),
        ((1,), {"x": 5}, ["multiple values for argument 'x'", "missing a required argument: 'y'"]),
        ((), {}, ["missing required arguments: 'x', 'y'"]),
        (
            (),
            {"a": 1, "b": 2, "y": 1},
            ["unexpected keyword arguments 'a', 'b'", "missing a required argument: 'x'"],
        ),
        ((1, 2), {}, []),
    ],
)  # fmt: skip
def test_every_problem_of_a_call_is_named(
    args: tuple[Any, ...], kwargs: dict[str, Any], expected: list[str]
) -> None:
    sig = inspect.signature(lambda x, y: None)
    assert problems(sig, args, kwargs) == expected


def test_positional_only_keyword_only_and_catch_all_parameters() -> None:
    def run(a: int, /, b: int, *rest: int, c: int, d: int = 0, **extra: int) -> None: ...

    sig = inspect.signature(run)
    assert problems(sig, (1, 2, 3, 4), {"c": 1, "anything": 2}) == []
    # a positional-only name given by keyword lands in **extra, so only 'a' is missing
    assert problems(sig, (), {"a": 1, "b": 2, "c": 3}) == ["missing a required argument: 'a'"]
    assert problems(sig, (1, 2), {}) == ["missing a required argument: 'c'"]


def test_a_bound_task_is_checked_without_its_self_parameter(broker: Any) -> None:
    from tests.testapp.tasks import flaky

    params = list(inspect.signature(flaky.run).parameters)[1:]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        flaky.delay(*range(len(params)), nope=1)


# -- CELERY_* settings ------------------------------------------------------------
def test_celery_settings_left_behind_are_named_with_their_replacement() -> None:
    with override_settings(
        CELERY_BROKER_URL="redis://localhost",
        CELERY_TASK_ACKS_LATE=True,
        CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 3600},
        CELERY_SOMETHING_ELSE=1,
        CELERYBEAT_SCHEDULE={},
    ):
        found = {m.msg.split()[0]: m for m in check_settings() if m.id == "taskq.W005"}
    assert set(found) == {
        "CELERY_BROKER_URL",
        "CELERY_TASK_ACKS_LATE",
        "CELERY_BROKER_TRANSPORT_OPTIONS",
        "CELERY_SOMETHING_ELSE",
        "CELERYBEAT_SCHEDULE",
    }
    assert found["CELERY_BROKER_URL"].hint.startswith("Use TASKQ_BROKER_URL")
    assert found["CELERY_TASK_ACKS_LATE"].hint.startswith("Use TASKQ_TASK_ACKS_LATE")
    assert "heartbeat" in found["CELERY_BROKER_TRANSPORT_OPTIONS"].hint.lower()
    assert "migrating-from-celery.md" in found["CELERY_SOMETHING_ELSE"].hint
    assert not [m for m in check_settings() if m.id == "taskq.W005"]


def test_the_settings_table_of_the_migration_guide_matches_the_check() -> None:
    """Each row's CELERY_ names map, in order, to its TASKQ_ names (or to none)."""
    text = (DOCS / "migrating-from-celery.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str | None] = {}
    for line in section.splitlines():
        if not line.startswith("| `CELERY_"):
            continue
        left, right = line.split("|")[1:3]
        celery = re.findall(r"`(CELERY_[A-Z_]+)", left)
        taskq = re.findall(r"`(TASKQ_[A-Z_]+)`", right)
        if right.strip().startswith("none"):
            taskq = []
        if len(taskq) < len(celery):  # one replacement for several, or none
            taskq = (taskq or [None]) * len(celery)  # type: ignore[list-item]
        table.update(zip(celery, taskq, strict=False))
    assert table == celery_names.SETTINGS
    from django_taskq.conf import DEFAULTS

    for replacement in filter(None, celery_names.SETTINGS.values()):
        assert replacement.removeprefix("TASKQ_") in DEFAULTS, replacement


# -- TASKQ_BEAT_SCHEDULE ------------------------------------------------------------
@pytest.mark.django_db  # Django 6.1's check also runs database checks
def test_a_beat_schedule_with_wrong_arguments_fails_the_check() -> None:
    schedule = {
        "fine": {"task": "tests.testapp.tasks.add", "schedule": 60, "args": [1, 2]},
        "too-few": {"task": "tests.testapp.tasks.add", "schedule": 60, "args": [1]},
        "typo": {"task": "tests.testapp.tasks.addd", "schedule": 60, "args": [1, 2]},
    }
    with override_settings(TASKQ_BEAT_SCHEDULE=schedule):
        messages = {m.id: m for m in check_settings() if m.id in ("taskq.E005", "taskq.W006")}
        assert messages["taskq.E005"].msg == (
            "TASKQ_BEAT_SCHEDULE['too-few']: tests.testapp.tasks.add(x, y): "
            "missing a required argument: 'y'"
        )
        assert messages["taskq.W006"].msg.startswith("TASKQ_BEAT_SCHEDULE['typo']: no task named")
        assert messages["taskq.W006"].hint == "Did you mean 'tests.testapp.tasks.add'?"
        with pytest.raises(SystemCheckError, match="too-few"):
            call_command("check")


def test_an_unreadable_beat_schedule_entry_fails_the_check() -> None:
    with override_settings(TASKQ_BEAT_SCHEDULE={"odd": {"task": "x", "schedule": "often"}}):
        [message] = [m for m in check_settings() if m.id == "taskq.E005"]
    assert message.msg.startswith("TASKQ_BEAT_SCHEDULE['odd']: 'schedule' must be")


@pytest.mark.django_db
def test_a_beat_schedule_queue_no_worker_can_consume_fails_the_check() -> None:
    entry = {"task": "tests.testapp.tasks.add", "schedule": 60, "args": [1, 2]}
    schedule = {"spaced": {**entry, "options": {"queue": "two words"}}}
    with override_settings(TASKQ_BEAT_SCHEDULE=schedule):
        [message] = [m for m in check_settings() if m.id == "taskq.E005"]
    assert message.msg.startswith("TASKQ_BEAT_SCHEDULE['spaced']: queue must be a name")


# -- naive datetimes ----------------------------------------------------------------
def test_a_naive_eta_warns_at_the_callers_line(broker: Any) -> None:
    naive = dt.datetime.now() + dt.timedelta(hours=1)
    with override_settings(TIME_ZONE="Europe/Berlin"):
        with pytest.warns(RuntimeWarning, match=r"eta=.* is a naive datetime .*Europe/Berlin"):
            add.apply_async((1, 1), eta=naive)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            echo.apply_async((1,), eta=naive)
            echo.apply_async((1,), eta=timezone.now() + dt.timedelta(hours=1))
            echo.apply_async((1,), countdown=60)
    [warning] = caught  # only the naive one
    assert warning.filename == __file__  # the caller's line, not django_taskq's


# -- Celery's task and call options ------------------------------------------------
def test_retry_kwargs_set_max_retries_and_the_delay() -> None:
    from django_taskq.task import Task

    def job() -> None: ...

    task = Task(job, autoretry_for=(OSError,), retry_kwargs={"max_retries": 7, "countdown": 4})
    assert (task.max_retries, task.default_retry_delay) == (7, 4.0)
    own = Task(job, max_retries=2, retry_kwargs={"max_retries": 7})  # the task's own option wins
    assert own.max_retries == 2
    with pytest.raises(TypeError, match="retry_kwargs takes a dict with 'max_retries'"):
        Task(job, retry_kwargs={"delay": 1})


def test_celery_options_we_do_not_take_say_what_to_do_instead(broker: Any) -> None:
    from django_taskq.task import Task

    def job() -> None: ...

    with pytest.raises(TypeError, match="Celery's reject_on_worker_lost: a message whose worker"):
        Task(job, reject_on_worker_lost=True)
    with pytest.raises(TypeError, match="Celery's retry_policy: publishing is always retried"):
        add.apply_async((1, 2), retry_policy={"max_retries": 3})
    with pytest.raises(TypeError, match=r"unknown option\(s\) nonsense$"):
        add.apply_async((1, 2), nonsense=1)


def test_routing_key_and_exchange_are_taken_as_the_queue(broker: Any) -> None:
    from django_taskq.broker import keys

    with pytest.warns(
        DeprecationWarning, match=r"apply_async\(routing_key='reports'\) is Celery's"
    ):
        add.apply_async((1, 2), routing_key="reports")
    with pytest.warns(DeprecationWarning, match="exchange"):
        add.apply_async((1, 2), exchange="other", queue="mine")  # queue= wins
    assert broker.xlen(keys.stream("reports", 5)) == 1
    assert broker.xlen(keys.stream("mine", 5)) == 1
    assert broker.xlen(keys.stream("other", 5)) == 0
