"""TaskqBackend's OPTIONS: django_taskq settings given in TASKS, checked, read by a real worker.

The end-to-end test runs a worker whose settings (tests/settings_tasks_options.py)
are docs/migrating-from-django-tasks-redis.md's "after" example, with no
TASKQ_BROKER_URL, TASKQ_KEY_PREFIX, ...: it finds Redis, its key prefix and
the result TTL only through the backend's OPTIONS, as a project that keeps
its configuration in TASKS does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_taskq.tasks_framework import PACKAGE, part

if PACKAGE is None:
    pytest.skip(
        "neither django.tasks (Django 6.0+) nor the django-tasks backport is installed",
        allow_module_level=True,
    )

from django_taskq import AsyncResult
from django_taskq.broker import keys
from django_taskq.conf import taskq_settings
from tests.testapp import jobs

TaskResultStatus = part("base").TaskResultStatus

pytestmark = pytest.mark.e2e

BACKEND = "django_taskq.backends.TaskqBackend"


def _tasks(options: Any, **more: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": BACKEND, "QUEUES": [], "OPTIONS": options}, **more}


@pytest.fixture
def only_tasks(settings: Any) -> dict[str, Any]:
    """This process configured as tests/settings_tasks_options.py: no TASKQ_BROKER_URL, ..."""
    from tests import settings_tasks_options

    url = settings.TASKQ_BROKER_URL
    tasks = settings_tasks_options.example("after")
    for name in tasks["default"]["OPTIONS"]:
        if hasattr(settings, "TASKQ_" + name):
            delattr(settings, "TASKQ_" + name)
    tasks["default"]["OPTIONS"]["BROKER_URL"] = url
    settings.TASKS = tasks
    return tasks


def test_options_alone_configure_the_producer_and_the_worker(
    only_tasks: dict[str, Any], start_worker: Any, broker: Any
) -> None:
    from tests.settings_tasks_options import OPTIONS_KEY_PREFIX

    assert taskq_settings.KEY_PREFIX == OPTIONS_KEY_PREFIX
    given = "TASKS['default']['OPTIONS']"
    assert taskq_settings.origin("BROKER_URL") == f"{given}['BROKER_URL']"
    assert taskq_settings.origin("MAX_DELIVERIES") == f"{given}['MAX_DELIVERIES']"
    assert taskq_settings.origin("EVENTS") == "TASKQ_EVENTS"

    result = jobs.multiply.enqueue(6, 7)
    start_worker("-P", "solo", env={"DJANGO_SETTINGS_MODULE": "tests.settings_tasks_options"})
    AsyncResult(result.id).get(timeout=15)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 42
    # The worker wrote the result under the OPTIONS' prefix, with their RESULT_EXPIRES
    # (30 days; the default is a day).
    stored = keys.result(result.id)
    assert stored.startswith("{" + OPTIONS_KEY_PREFIX) and broker.exists(stored)
    assert broker.pttl(stored) > 86_400_000


def test_a_django_tasks_redis_option_is_refused_naming_its_replacement(settings: Any) -> None:
    settings.TASKS = _tasks({"REDIS_URL": "redis://elsewhere:6379/0", "REDIS_BLOCK_TIMEOUT": 5})
    with pytest.raises(ImproperlyConfigured) as caught:
        jobs.multiply.enqueue(1, 2)
    message = str(caught.value)
    assert "TASKS['default']['OPTIONS']['REDIS_URL']: it is django-tasks-redis's; " in message
    assert "write BROKER_URL" in message
    assert "['REDIS_BLOCK_TIMEOUT']: it is django-tasks-redis's and has no counterpart" in message


def test_an_unknown_option_is_refused(settings: Any) -> None:
    settings.TASKS = _tasks({"BROKER_ULR": "redis://x"})
    with pytest.raises(ImproperlyConfigured, match=r"\['BROKER_ULR'\]: not a django_taskq setting"):
        jobs.multiply.enqueue(1, 2)


def test_an_option_that_contradicts_its_setting_is_refused(settings: Any) -> None:
    settings.TASKS = _tasks({"BROKER_URL": "redis://127.0.0.1:1/5"})
    with pytest.raises(ImproperlyConfigured, match="TASKQ_BROKER_URL is .*: keep one of them"):
        jobs.multiply.enqueue(1, 2)


def test_the_same_value_twice_is_accepted(settings: Any, broker: Any) -> None:
    settings.TASKS = _tasks({"BROKER_URL": settings.TASKQ_BROKER_URL, "RESULT_EXPIRES": 60})
    result = jobs.multiply.enqueue(1, 2)
    assert 0 < broker.pttl(keys.result(result.id)) <= 60_000


def test_two_aliases_must_agree(settings: Any) -> None:
    settings.TASKS = _tasks(
        {"RESULT_EXPIRES": 60},
        other={"BACKEND": BACKEND, "QUEUES": [], "OPTIONS": {"RESULT_EXPIRES": 120}},
    )
    with pytest.raises(ImproperlyConfigured, match="every TaskqBackend alias shares one"):
        jobs.multiply.enqueue(1, 2)


def test_a_subclass_of_the_backend_is_read_too(settings: Any) -> None:
    settings.TASKS = {
        "default": {
            "BACKEND": "tests.django_tasks.backends.ProjectBackend",
            "OPTIONS": {"RESULT_EXPIRES": 123},
        }
    }
    assert taskq_settings.RESULT_EXPIRES == 123


def test_a_pending_record_is_kept_past_its_run_after(settings: Any, broker: Any) -> None:
    """A task due later than TASKQ_RESULT_EXPIRES is still known while it waits."""
    settings.TASKQ_RESULT_EXPIRES = 60
    later = jobs.multiply.using(run_after=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    waiting = later.enqueue(1, 2)
    assert broker.pttl(keys.result(waiting.id)) > 2 * 3600 * 1000
    assert jobs.multiply.get_result(waiting.id).status == TaskResultStatus.READY
    now = jobs.multiply.enqueue(1, 2)
    assert 0 < broker.pttl(keys.result(now.id)) <= 60_000


def test_manage_py_check_reports_the_options(settings: Any) -> None:
    from django_taskq.checks import check_settings

    settings.TASKS = _tasks({"REDIS_KEY_PREFIX": "x", "RESULT_BACKEND": "http://nope"})
    found = {(m.id, m.msg.split(":")[0]) for m in check_settings()}
    assert ("taskq.E007", "TASKS['default']['OPTIONS']['REDIS_KEY_PREFIX']") in found
    assert any(i == "taskq.E001" for i, _ in found)
