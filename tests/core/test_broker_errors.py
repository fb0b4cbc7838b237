"""Redis down: reads, operations and commands raise BrokerUnavailable, not redis-py's errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_taskq import AsyncResult, GroupResult, control
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.testing import free_port
from tests.e2e_helpers import ROOT


@pytest.fixture
def down_url() -> Iterator[str]:
    """A broker URL, with a password, where nothing listens (connections are refused)."""
    url = f"redis://app:s3cret@127.0.0.1:{free_port()}/0"
    with override_settings(TASKQ_BROKER_URL=url):
        yield url


def _redacted(url: str) -> str:
    return url.replace(":s3cret@", ":***@")


READS: dict[str, Callable[[AsyncResult], Any]] = {
    "state": lambda r: r.state,
    "status": lambda r: r.status,
    "result": lambda r: r.result,
    "info": lambda r: r.info,
    "traceback": lambda r: r.traceback,
    "ready": lambda r: r.ready(),
    "successful": lambda r: r.successful(),
    "failed": lambda r: r.failed(),
    "get": lambda r: r.get(timeout=1),
    "get without timeout": lambda r: r.get(),
    "exists": lambda r: r.exists(),
    "forget": lambda r: r.forget(),
    "revoke": lambda r: r.revoke(),
}


@pytest.mark.parametrize("call", list(READS))
def test_async_result_with_redis_down(down_url: str, call: str) -> None:
    with pytest.raises(BrokerUnavailable) as info:
        READS[call](AsyncResult("t-1"))
    message = str(info.value)
    assert message.startswith("cannot ")
    assert f"Redis at {_redacted(down_url)} is unreachable" in message
    assert "s3cret" not in message
    assert "Check that Redis is running and TASKQ_BROKER_URL is right." in message
    assert "\n" not in message
    assert not isinstance(info.value.__cause__, BrokerUnavailable)


def test_async_result_names_the_task(down_url: str) -> None:
    with pytest.raises(BrokerUnavailable, match="cannot read the result of task t-7: "):
        _ = AsyncResult("t-7").state
    with pytest.raises(BrokerUnavailable, match="cannot wait for task t-7: "):
        AsyncResult("t-7").get(timeout=1)


def test_a_separate_result_redis_is_named(down_url: str) -> None:
    results = f"redis://127.0.0.1:{free_port()}/2"
    with override_settings(TASKQ_RESULT_BACKEND=results):
        with pytest.raises(BrokerUnavailable) as info:
            _ = AsyncResult("t-1").state
        assert f"Redis at {results} is unreachable" in str(info.value)
        assert "TASKQ_RESULT_BACKEND is right" in str(info.value)


GROUP_CALLS: dict[str, Callable[[GroupResult], Any]] = {
    "save": lambda g: g.save(),
    "restore": lambda g: GroupResult.restore("g-1"),
    "delete": lambda g: g.delete(),
    "ready": lambda g: g.ready(),
    "completed_count": lambda g: g.completed_count(),
    "get": lambda g: g.get(timeout=1),
    "forget": lambda g: g.forget(),
}


@pytest.mark.parametrize("call", list(GROUP_CALLS))
def test_group_result_with_redis_down(down_url: str, call: str) -> None:
    group_result = GroupResult("g-1", [AsyncResult("a"), AsyncResult("b")])
    with pytest.raises(BrokerUnavailable, match=r"^cannot .*: Redis at .* is unreachable"):
        GROUP_CALLS[call](group_result)


CONTROL_CALLS: dict[str, Callable[[], Any]] = {
    "inspect": control.inspect,
    "purge": control.purge,
    "purge one queue": lambda: control.purge(["default"]),
    "dead_letters": control.dead_letters,
    "requeue_dead": control.requeue_dead,
    "known_queues": control.known_queues,
    "revoke": lambda: control.revoke(["t-1"], terminate=True),
}


@pytest.mark.parametrize("call", list(CONTROL_CALLS))
def test_control_with_redis_down(down_url: str, call: str) -> None:
    with pytest.raises(BrokerUnavailable, match=r"^cannot .*: Redis at .* is unreachable"):
        CONTROL_CALLS[call]()


COMMANDS: dict[str, list[str]] = {
    "taskq_inspect": ["taskq_inspect"],
    "taskq_inspect --json --dead": ["taskq_inspect", "--json", "--dead", "5"],
    "taskq_purge": ["taskq_purge", "--force"],
    "taskq_purge -Q": ["taskq_purge", "-Q", "default", "--force"],
    "taskq_dead": ["taskq_dead"],
    "taskq_dead --requeue": ["taskq_dead", "--requeue"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_commands_with_redis_down_raise_command_error(down_url: str, command: str) -> None:
    with pytest.raises(CommandError) as info:
        call_command(*COMMANDS[command])
    message = str(info.value)
    assert f"Redis at {_redacted(down_url)} is unreachable" in message
    assert "\n" not in message


def test_command_prints_one_line_and_exits_non_zero() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "TASKQ_BROKER_URL": url}
    done = subprocess.run(
        [sys.executable, "manage.py", "taskq_inspect"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"CommandError: cannot inspect queues and workers: Redis at {url} is unreachable"
    )
