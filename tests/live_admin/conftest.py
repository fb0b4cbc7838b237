"""Fixtures of the live admin pages: users with each kind of access, and Redis data to show.

The data is put in Redis the way django_taskq puts it there: tasks are sent
with ``apply_async`` (ready, delayed, at several priorities), dead letters
have the fields ``dead_letter.lua`` writes, counters are written with
``metrics.counters.Batch``. Malformed entries are written raw, as a broken
client would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from django_taskq.broker import keys
from django_taskq.broker.publish import run_pipeline
from django_taskq.metrics import counters
from tests.browser import chromium, screenshot_dir

PASSWORD = "secret-pass"

#: The permissions of a user who may look at every live page and act on none.
VIEW_PERMISSIONS = ("view_queue", "view_worker", "view_deadletter", "view_dashboard")


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    """Staff with the view permission of every live page, and no change permission."""
    user = django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_taskq", codename__in=VIEW_PERMISSIONS
        )
    )
    return user


@pytest.fixture
def nobody(django_user_model: Any) -> Any:
    """Staff without any permission of django_taskq."""
    return django_user_model.objects.create_user("nobody", password=PASSWORD, is_staff=True)


def logged_in(user: Any, enforce_csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(superuser: Any) -> Client:
    return logged_in(superuser)


@pytest.fixture
def viewer_client(viewer: Any) -> Client:
    return logged_in(viewer)


@pytest.fixture
def nobody_client(nobody: Any) -> Client:
    return logged_in(nobody)


# -- data in Redis ---------------------------------------------------------------------


def send_messages() -> dict[str, Any]:
    """Ready and delayed tasks in two queues, at two priorities; their ids by role."""
    from tests.testapp.tasks import add, echo

    ids = {
        "ready": [
            add.apply_async((1, 2), queue="shop", priority=9).id,
            add.apply_async((3, 4), queue="shop", priority=9).id,
            echo.apply_async(("parcel",), queue="shop", priority=2).id,
            echo.apply_async(({"n": 1},), queue="mail").id,
        ],
        "delayed": [add.apply_async((5, 6), queue="shop", countdown=3600).id],
    }
    return ids


def dead_letter(
    broker: Any, queue: str, body: bytes | str, reason: str, task_id: str = "", dc: int = 3
) -> str:
    """Add a dead letter with the fields dead_letter.lua writes; its entry id."""
    broker.sadd(keys.queues(), queue)
    entry_id = broker.xadd(
        keys.dead(queue),
        {
            "i": task_id,
            "b": body,
            "dc": dc,
            "reason": reason,
            "stream": keys.stream(queue, 5),
            "at": f"{time.time():.3f}",
        },
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def envelope_body(
    task: str,
    task_id: str,
    args: list[Any],
    serializer: str = "json",
    compression: str | None = None,
    kwargs: dict[str, Any] | None = None,
) -> str | bytes:
    """The body ``delay()`` would send; compressed whatever its size when a compression is named."""
    from django.test import override_settings

    from django_taskq.messages import Envelope

    envelope = Envelope(id=task_id, task=task, args=args, kwargs=kwargs or {})
    with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
        return envelope.encode(serializer, compression)


def write_counters(broker: Any) -> None:
    """Counters as a worker's flushes write them: runs, runtimes, failures, this minute."""
    batch = counters.Batch()
    worker = "web1"  # the hostname of the browser test's worker (-n web1)
    for _ in range(6):
        batch.task_ended("shop", "tests.testapp.tasks.add", worker, counters.SUCCEEDED, 0.02, 0.1)
    for _ in range(2):
        batch.task_ended(
            "shop", "tests.testapp.tasks.sleep_then", worker, counters.SUCCEEDED, 4.0, 0.5
        )
    for _ in range(3):
        batch.task_ended("mail", "tests.testapp.tasks.fail", worker, counters.FAILED, 0.3, 0.2)
    batch.task_ended("mail", "tests.testapp.tasks.fail", worker, counters.REJECTED, None, None)
    run_pipeline(broker, lambda p: batch.queue_writes(p, broker))
    broker.sadd(keys.queues(), "shop", "mail")


def write_last_hour(broker: Any) -> None:
    """An hour of endings, minute by minute, as workers' flushes over that hour would write."""
    now = time.time()
    for ago in range(59, 0, -1):
        batch = counters.Batch()
        for _ in range(20 + (ago * 7) % 13):
            batch.task_ended(
                "shop", "tests.testapp.tasks.add", "web1", counters.SUCCEEDED, 0.02, 0.1
            )
        for _ in range(3 if ago % 9 == 0 else ago % 2):
            batch.task_ended("mail", "tests.testapp.tasks.fail", "web1", counters.FAILED, 0.3, 0.2)
        at = now - ago * 60
        run_pipeline(broker, lambda p, b=batch, at=at: b.queue_writes(p, broker, now=at))


@pytest.fixture
def redis_data(broker: Any) -> Iterator[dict[str, Any]]:
    """Messages, dead letters (one unreadable) and counters, as the pages will show them."""
    ids = send_messages()
    good = dead_letter(
        broker,
        "shop",
        envelope_body("tests.testapp.tasks.add", "dead-1", [7, 8]),
        "task tests.testapp.tasks.add failed 3 deliveries",
        task_id="dead-1",
    )
    bad = dead_letter(broker, "shop", b"\xff\xfe not json {", "message body is not UTF-8", dc=0)
    ids["dead"] = [good, bad]
    write_counters(broker)
    yield ids


# -- a real browser ----------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium (skips with the reason when selenium or Chromium is missing)."""
    yield from chromium("1400,1000", "--force-device-scale-factor=1")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)
