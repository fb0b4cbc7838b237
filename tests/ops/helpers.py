"""Helpers of the remote-control and ops-command tests: run commands, wait on Redis, gate tasks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from io import StringIO
from typing import Any

import redis
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.e2e_helpers import ROOT, command_env

#: Generous: replies come as soon as every worker answered, so this only bounds a failure.
REPLY_TIMEOUT = "15"


def manage(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run ``python manage.py <args>`` as a user would (run_from_argv, real exit status)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=command_env("tests.settings", env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def command(*args: str) -> tuple[str, str]:
    """``call_command(*args)`` in this process; (stdout, stderr). CommandError propagates."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def command_json(*args: str) -> dict[str, Any]:
    """A ``--json`` command's output, parsed (its CommandError, if any, is swallowed)."""
    out = StringIO()
    try:
        call_command(*args, "--json", stdout=out)
    except CommandError:
        pass
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Re-read Redis state until ``condition()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def started(client: redis.Redis, key: str, timeout: float = 30) -> int:
    """Block until the ``gated`` task with ``key`` has started; its pid."""
    item: Any = client.blpop([f"{key}:started"], timeout=timeout)
    assert item is not None, f"gated task {key} did not start within {timeout}s"
    return int(item[1])


def release(client: redis.Redis, key: str) -> None:
    """Let the ``gated`` task with ``key`` finish."""
    client.rpush(key, "go")


def only_reply(data: dict[str, Any]) -> dict[str, Any]:
    """The single worker reply of a ``--json`` output."""
    assert data["no_reply"] == [], data
    [reply] = data["replies"].values()
    assert reply["ok"], reply
    return reply
