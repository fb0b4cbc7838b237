"""Helpers for beat tests: beat subprocesses, and what beat enqueued, read from Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from django_taskq.broker import keys
from tests.e2e_helpers import command_env, spawn_command


@dataclass
class Sent:
    """One message found in a ready stream."""

    name: str | None
    task: str
    due: str | None
    queue: str
    priority: int
    added_ms: int  # when Redis added it (stream entry id)
    body: dict[str, Any]


def sent_messages(client: redis.Redis) -> list[Sent]:
    """Every message in every ready stream, oldest first."""
    found: list[Sent] = []
    queues = sorted(q.decode() for q in client.smembers(keys.queues()))
    for queue in queues:
        for priority in keys.PRIORITIES:
            for entry_id, fields in client.xrange(keys.stream(queue, priority)):
                body = json.loads(fields[b"b"])
                headers = body.get("headers") or {}
                found.append(
                    Sent(
                        name=headers.get("periodic_task_name"),
                        task=body["task"],
                        due=headers.get("periodic_task_due"),
                        queue=queue,
                        priority=priority,
                        added_ms=int(entry_id.split(b"-")[0]),
                        body=body,
                    )
                )
    found.sort(key=lambda s: s.added_ms)
    return found


class BeatProcess:
    """A real ``manage.py taskq_beat`` subprocess using this test's Redis and database."""

    def __init__(self, hostname: str, env: dict[str, str] | None = None) -> None:
        self.hostname = hostname
        self.env = command_env("tests.beat.beat_settings", env)
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def start(self) -> BeatProcess:
        self.process = spawn_command(["taskq_beat", "--hostname", self.hostname], self.env)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def when(self, text: str) -> float | None:
        """Wall time of the first output line containing ``text``."""
        with self._lock:
            for at, line in self.lines:
                if text in line:
                    return at
        return None

    def wait_for(self, text: str, timeout: float = 20) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.when(text)
            if at is not None:
                return at
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.hostname}: no {text!r} within {timeout}s:\n{self.output}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def terminate(self, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@dataclass
class Queued:
    """One message waiting in a delayed set (a periodic run sent ahead, for instance)."""

    name: str | None
    due: str | None
    task_id: str
    due_ms: int
    body: dict[str, Any]


def queued_ahead(client: redis.Redis, queue: str = "default") -> list[Queued]:
    """Every message waiting in ``queue``'s delayed set, earliest first."""
    found = []
    for member, score in client.zrange(keys.delayed(queue), 0, -1, withscores=True):
        _, task_id, body_text = member.decode().split("\n", 2)
        body = json.loads(body_text)
        headers = body.get("headers") or {}
        found.append(
            Queued(
                name=headers.get("periodic_task_name"),
                due=headers.get("periodic_task_due"),
                task_id=task_id,
                due_ms=int(score),
                body=body,
            )
        )
    return found


@dataclass
class Started:
    """One periodic run a worker started (recorded by ``tests.testapp.tasks.stamp``)."""

    at: float
    due: str
    name: str


def started_runs(client: redis.Redis, key: str) -> list[Started]:
    """The runs ``stamp`` recorded in the list ``key``, in the order they started."""
    runs = []
    for raw in client.lrange(key, 0, -1):
        at, due, name = raw.decode().split(" ", 2)
        runs.append(Started(at=float(at), due=due, name=name))
    return runs


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(interval)


def leader_pid(client: redis.Redis) -> int | None:
    """The pid in the leader lease (holder is ``host:pid:random``)."""
    from django_taskq.beat.lease import lease_key

    raw = client.get(lease_key())
    return int(raw.decode().split(":")[1]) if raw else None
