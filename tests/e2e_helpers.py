"""Start real ``manage.py taskq_worker`` subprocesses for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import pool_children

ROOT = Path(__file__).resolve().parent.parent


def command_env(settings: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a ``manage.py`` subprocess of a test: its settings, Redis and database."""
    from django.db import connection

    # The subprocess uses the database this test uses (the test database
    # once pytest-django has created it), on SQLite and PostgreSQL alike.
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "TASKQ_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


def spawn_command(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``python manage.py <args>`` in its own session, output piped as text."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


class WorkerProcess:
    """A worker subprocess whose output is collected for assertions."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.env = command_env("tests.settings", env)
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self, wait_ready: bool = True) -> WorkerProcess:
        self.process = spawn_command(["taskq_worker", *self.args], self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait_ready and not self._ready.wait(30):
            self.stop()
            raise RuntimeError("worker did not become ready:\n" + self.output)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.rstrip().endswith(" ready"):  # "worker <name> ready", not a task name
                self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group (parent and children), as a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_for_line(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line containing {text!r} in worker output:\n{self.output}")

    def children(self) -> list[int]:
        """PIDs of the worker's pool children (not its history recorder process)."""
        return pool_children(self.pid)


@pytest.fixture
def start_worker() -> Iterator[object]:
    """``start_worker("-P", "solo", ...)`` starts a worker, stopped after the test."""
    started: list[WorkerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, wait_ready: bool = True
    ) -> WorkerProcess:
        worker = WorkerProcess(*args, env=env).start(wait_ready=wait_ready)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=10)
        worker.kill()
        # Shown by pytest only when the test failed: what the worker said.
        print(f"--- output of worker {' '.join(worker.args)} ---\n{worker.output}")


def redis_info(broker: Any, section: str) -> list[dict[str, Any]]:
    """``INFO section`` of every primary of the set-up (one on a single Redis or Sentinel)."""
    from django_taskq.broker.topology import is_cluster

    if not is_cluster(broker):
        return [broker.info(section)]
    return [broker.info(section, target_nodes=node) for node in broker.get_primaries()]


def command_calls(broker: Any, command: str) -> int:
    """How many times the Redis set-up ran ``command`` so far, scripts' calls included."""
    return sum(
        int(info.get(f"cmdstat_{command}", {}).get("calls", 0))
        for info in redis_info(broker, "commandstats")
    )


def blocked_clients(broker: Any) -> int:
    """How many clients of the Redis set-up wait in a blocking command now."""
    return sum(int(info["blocked_clients"]) for info in redis_info(broker, "clients"))


class HeartbeatRounds:
    """Counts the rounds of heartbeats of the running workers' consumers from now on.

    Something to wait for that takes about a second a round without a sleep:
    a worker beats every TASKQ_WORKER_HEARTBEAT_TIMEOUT / 6.
    """

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.seen = self._read()
        self.rounds = 0

    def _read(self) -> dict[str, Any]:
        from django_taskq.broker import keys

        found = self.broker.scan_iter(match=keys.heartbeat("*"))
        return {key: self.broker.get(key) for key in found}

    def since(self) -> int:
        now = self._read()
        if any(self.seen.get(key) not in (None, value) for key, value in now.items()):
            self.rounds += 1
        self.seen = now
        return self.rounds
