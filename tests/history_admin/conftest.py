"""Fixtures of the history admin tests: rows made with the ORM, and users by permission.

TaskRecord rows are written only by the recorder in production; these tests
make them directly, as the recorder would, to test what the admin shows and
does with them. Actions that send or revoke tasks use the real Redis of the
test session (and real workers where a task must really run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from django_taskq.history.models import TaskRecord
from django_taskq.messages import new_id
from django_taskq.registry import registry

PASSWORD = "secret-pass"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "tests/testapp/tasks.py", line 31, in fail\n'
    "    raise ValueError(message)\n"
    "ValueError: boom\n"
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Users are made per test; skip PBKDF2's deliberate slowness."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def body_of(
    task: str,
    args: list[Any],
    kwargs: dict[str, Any] | None = None,
    serializer: str = "json",
    compression: str | None = None,
    **options: Any,
) -> tuple[str, str]:
    """The message ``task.apply_async(args, kwargs, **options)`` would send, as kept, and its id.

    With a ``serializer`` or ``compression`` (applied whatever the size), the
    body is kept as the recorder keeps it: ``base64:`` and the bytes.
    """
    import base64

    from django.test import override_settings

    envelope = registry.get(task).build_envelope(args, kwargs or {}, **options)
    with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
        body = envelope.encode(serializer, compression)
    if isinstance(body, bytes):
        return "base64:" + base64.b64encode(body).decode(), envelope.id
    return body, envelope.id


def make_record(**fields: Any) -> TaskRecord:
    """A history row as the recorder writes one; every field can be overridden."""
    now = timezone.now()
    values: dict[str, Any] = {
        "task_id": new_id(),
        "task_name": "tests.testapp.tasks.add",
        "state": "SUCCESS",
        "queue": "default",
        "priority": 5,
        "worker": "taskq@web-1",
        "args": "[2, 3]",
        "kwargs": "{}",
        "result": "5",
        "sent_at": now - dt.timedelta(seconds=3),
        "received_at": now - dt.timedelta(seconds=2),
        "started_at": now - dt.timedelta(seconds=2),
        "finished_at": now - dt.timedelta(seconds=1),
        "runtime": 1.0,
        "wait_time": 1.0,
    }
    values.update(fields)
    return TaskRecord.objects.create(**values)


def failed_record(
    task: str = "tests.testapp.tasks.add", args: list[Any] | None = None, **fields: Any
) -> TaskRecord:
    """A FAILURE row whose kept message can be sent again."""
    call = args if args is not None else [2, 3]
    body, task_id = body_of(task, call, **fields.pop("options", {}), **fields.pop("codecs", {}))
    values = {
        "task_id": task_id,
        "task_name": task,
        "args": repr(call),
        "state": "FAILURE",
        "result": "",
        "exception_type": "ValueError",
        "exception_message": "boom",
        "traceback": TRACEBACK,
        "body": body,
    }
    values.update(fields)
    return make_record(**values)


@pytest.fixture
def start_plain_worker(start_worker: Any) -> Callable[..., Any]:
    """``start_worker`` without the history recorder (tests/history_admin/worker_settings.py)."""

    def start(*args: str, env: dict[str, str] | None = None) -> Any:
        return start_worker(
            *args,
            env={"DJANGO_SETTINGS_MODULE": "tests.history_admin.worker_settings", **(env or {})},
        )

    return start


@pytest.fixture
def user_with(django_user_model: Any) -> Callable[..., Any]:
    """``user_with("view", "change")``: a staff user with those TaskRecord permissions."""

    def make(*actions: str, username: str | None = None) -> Any:
        name = username or "staff-" + "-".join(actions or ("none",))
        user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
        for action in actions:
            user.user_permissions.add(
                Permission.objects.get(
                    content_type__app_label="django_taskq", codename=f"{action}_taskrecord"
                )
            )
        return user

    return make
