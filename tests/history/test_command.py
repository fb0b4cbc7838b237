"""``manage.py taskq_recorder`` as real processes: recording, SIGTERM, kill -9 and takeover."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_taskq.broker import keys
from django_taskq.history.models import TaskRecord
from tests.e2e_helpers import command_env, spawn_command
from tests.history.helpers import emit, ended, sent, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class RecorderProcess:
    def __init__(self, *args: str) -> None:
        self.process = spawn_command(["taskq_recorder", *args], command_env("tests.settings"))
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def start_command() -> Iterator[Callable[..., RecorderProcess]]:
    started: list[RecorderProcess] = []

    def start(*args: str) -> RecorderProcess:
        started.append(RecorderProcess(*args))
        return started[-1]

    yield start
    for proc in started:
        if proc.process.poll() is None:
            os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait(10)
        print(f"--- output of taskq_recorder ---\n{proc.output}")


def holder(broker: Any) -> str:
    raw = broker.get(keys.recorder_lease())
    return raw.decode() if raw else ""


def recorded(task_id: str) -> bool:
    return TaskRecord.objects.filter(task_id=task_id, state="SUCCESS").exists()


def test_a_standby_takes_over_from_a_killed_recorder(broker: Any, start_command: Any) -> None:
    a = start_command("--hostname", "rec-a", "--lease", "2", "-l", "info")
    emit(broker, "default", [sent("one"), ended("succeeded", "one")])
    wait_for(lambda: recorded("one"))
    b = start_command("--hostname", "rec-b", "--lease", "2", "-l", "info")
    wait_for(lambda: "standing by" in b.output, what="standby line")
    assert holder(broker).startswith("rec-a:")

    os.killpg(a.process.pid, signal.SIGKILL)
    a.process.wait(10)
    emit(broker, "default", [sent("two"), ended("succeeded", "two")])
    wait_for(lambda: recorded("two"), timeout=15)
    assert holder(broker).startswith("rec-b:")
    assert "is recording" in b.output


def test_sigterm_stops_it_and_releases_the_lease(broker: Any, start_command: Any) -> None:
    rec = start_command("--hostname", "rec-a", "-l", "INFO")
    emit(broker, "default", [sent("one"), ended("succeeded", "one")])
    wait_for(lambda: recorded("one"))
    rec.process.send_signal(signal.SIGTERM)
    assert rec.process.wait(15) == 0
    assert holder(broker) == ""
    assert "history recorder: got SIGTERM, stopping" in rec.output
    assert "Traceback" not in rec.output
