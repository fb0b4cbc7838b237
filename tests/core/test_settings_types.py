"""Every plain TASKQ_* setting of the wrong type or range is a check error naming it.

These passed ``manage.py check`` and failed later, far from their cause (a
string MAX_DELIVERIES in the worker's first fetch, a timedelta
RESULT_EXPIRES in its first flush); four made the check itself crash.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import override_settings

from django_taskq.checks import check_settings
from django_taskq.conf import DEFAULTS
from django_taskq.settings_types import RULES

pytestmark = pytest.mark.django_db  # Django 6.1's check runs database checks too


def errors(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return [m.msg for m in check_settings() if m.id.startswith("taskq.E")]


BAD: dict[str, list[Any]] = {
    "KEY_PREFIX": ["", "a}b", "has space", 5],
    "BROKER_CONNECTION_OPTIONS": ["x", {1: 2}],
    "BROKER_SOCKET_TIMEOUT": ["10", 0, -1],
    "BROKER_CONNECT_TIMEOUT": [dt.timedelta(seconds=3)],
    "PUBLISH_RETRY": ["x", {"retries": 3}, {"max_retries": -1}, {"interval_max": "1"}],
    "DEFAULT_QUEUE": ["", "a b", None],
    "ROUTES": [["x"], {"t.*": 5}, {"t.*": {"queue": "a b"}}, {"t.*": {"priority": 10}}],
    "TASK_ALWAYS_EAGER": ["yes", 1],
    "TASK_DEFAULT_MAX_RETRIES": [-1, 1.5, "3"],
    "TASK_DEFAULT_RETRY_DELAY": [-1, "soon"],
    "TASK_TIME_LIMIT": [0, "60"],
    "COMPRESSION_MIN_SIZE": [-1, 1.5],
    "RESULT_EXPIRES": [dt.timedelta(days=1), None, 0, float("nan")],
    "WORKER_CONCURRENCY": [0, "4"],
    "WORKER_POOL": ["gevent", 5],
    "WORKER_PREFETCH": [0, "256"],
    "WORKER_MAX_MEMORY_PER_CHILD": ["200M", 0],
    "MAX_DELIVERIES": ["5", 0],
    "DEAD_LETTER_MAXLEN": [0],
    "METRICS_TOKEN": [5],
    "AUTH_HANDLER_OPTIONS": ["x"],
    "TIMEZONE": ["Mars/Olympus", 5, ""],
    "BEAT_LEASE_SECONDS": [0, "10"],
    "BEAT_MAX_STALENESS": [-5],
    "BEAT_RUN_KEY_TTL": ["garbage", 0],
    "HISTORY": ["no"],
    "HISTORY_RETENTION": [0, "7"],
    "HISTORY_MAX_ROWS": [0, 1.5],
    "HISTORY_BATCH": [0],
    "EVENTS_MAXLEN": ["100000"],
    "HISTORY_REPR_LIMIT": [0],
    "HISTORY_BODY_LIMIT": [-1],
}


@pytest.mark.parametrize(
    ("name", "value"), [(n, v) for n, values in BAD.items() for v in values], ids=repr
)
def test_a_bad_value_is_an_error_naming_the_setting_and_the_value(name: str, value: Any) -> None:
    found = [e for e in errors(**{f"TASKQ_{name}": value}) if f"TASKQ_{name}=" in e]
    assert found, f"TASKQ_{name}={value!r} passed the check"
    assert repr(value)[:60] in found[0] and " must be " in found[0]


def test_every_rule_is_a_setting_and_every_default_passes() -> None:
    assert set(RULES) <= set(DEFAULTS)
    assert errors() == []
    for name, rule in RULES.items():
        assert rule(DEFAULTS[name]) is None, name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BROKER_SOCKET_TIMEOUT", None),
        ("TASK_DEFAULT_MAX_RETRIES", None),
        ("TASK_TIME_LIMIT", 30),
        ("ROUTES", {"a.*": "slow", "b.*": {"queue": "fast", "priority": 0}}),
        ("TIMEZONE", "Asia/Tokyo"),
        ("HISTORY_RETENTION", None),
        ("HISTORY_RETENTION", 0.5),
        ("HISTORY_BODY_LIMIT", 0),
        ("WORKER_CONCURRENCY", 8),
        ("PUBLISH_RETRY", {"max_retries": 0}),
    ],
)
def test_good_values_pass(name: str, value: Any) -> None:
    assert errors(**{f"TASKQ_{name}": value}) == []


def test_a_taskq_backend_option_is_checked_and_named_where_it_is() -> None:
    tasks = {
        "default": {
            "BACKEND": "django_taskq.backends.TaskqBackend",
            "OPTIONS": {"DEAD_LETTER_MAXLEN": "5"},
        }
    }
    found = errors(TASKS=tasks)
    assert any(e.startswith("TASKS['default']['OPTIONS']['DEAD_LETTER_MAXLEN']='5'") for e in found)


@pytest.mark.parametrize(
    "settings",
    [
        {"TASKQ_ACCEPT_CONTENT": 5},
        {"TASKQ_ACCEPT_CONTENT": "json"},
        {"TASKQ_AUTH_HANDLERS": 5},
        {"TASKQ_AUTH_HANDLER_OPTIONS": "x"},
        {"TASKQ_BEAT_RUN_KEY_TTL": "garbage"},
    ],
    ids=repr,
)
def test_values_that_made_the_check_itself_crash_are_errors(settings: dict[str, Any]) -> None:
    [(setting, value)] = settings.items()
    assert any(f"{setting}={value!r}" in e for e in errors(**settings))
