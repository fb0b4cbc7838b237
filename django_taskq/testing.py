"""Helpers for testing code that uses django_taskq.

- ``RedisServer`` starts a private ``redis-server`` on a free port (no
  persistence), and can stop, restart or kill it to inject faults.
- ``eager()`` is a context manager that runs tasks inline, as with
  ``TASKQ_TASK_ALWAYS_EAGER=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server for tests, on 127.0.0.1 and a free port."""

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or ""
        if not self.binary:
            raise RuntimeError(
                "redis-server is not installed: install it (Debian/Ubuntu: "
                "apt-get install redis-server; macOS: brew install redis)"
            )
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="taskq-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        """Shut the server down cleanly (SIGTERM) and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        """Kill the server, stay down for ``down_for`` seconds, start it again."""
        self.kill()
        if down_for:
            time.sleep(down_for)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Run a private redis-server for the duration of the block."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def eager(propagate: bool = True) -> Iterator[None]:
    """Run every ``delay()``/``apply_async()`` inline within the block."""
    from django.test import override_settings

    with override_settings(TASKQ_TASK_ALWAYS_EAGER=True, TASKQ_TASK_EAGER_PROPAGATES=propagate):
        yield


def test_redis_url_from_env() -> str | None:
    """``TASKQ_TEST_REDIS_URL`` when the test session should use an existing Redis."""
    return os.environ.get("TASKQ_TEST_REDIS_URL") or None
