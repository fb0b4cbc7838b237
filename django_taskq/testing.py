"""Helpers for testing code that uses django_taskq.

- ``RedisServer`` starts a private ``redis-server`` on a free port (no
  persistence unless ``appendonly=True``), and can stop, restart or kill it
  to inject faults. A restart keeps its port and data directory, so with
  ``appendonly=True`` the data survives it.
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
from collections.abc import Iterator, Sequence

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(directory: str) -> None:
    """A self-signed cert.pem and key.pem for 127.0.0.1 in ``directory`` (needs openssl)."""
    if not shutil.which("openssl"):
        raise RuntimeError("a TLS test server needs the openssl command")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", f"{directory}/key.pem", "-out", f"{directory}/cert.pem",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip


def tls_args(certs: str) -> list[str]:
    """redis-server options to serve TLS with ``certs``/cert.pem (clients need no certificate)."""
    return [
        "--tls-cert-file", f"{certs}/cert.pem", "--tls-key-file", f"{certs}/key.pem",
        "--tls-ca-cert-file", f"{certs}/cert.pem", "--tls-auth-clients", "no",
    ]  # fmt: skip


class RedisServer:
    """A private redis-server for tests, on 127.0.0.1 and a free port."""

    def __init__(
        self,
        port: int | None = None,
        binary: str | None = None,
        *,
        tls: bool = False,
        appendonly: bool = False,
        appendfsync: str = "always",
        extra_args: Sequence[str] = (),
        password: str | None = None,
        certificate_dir: str | None = None,
    ) -> None:
        """``appendonly=True`` turns on the AOF (fsynced per ``appendfsync``:
        "always", "everysec" or "no"), so a restart, even after SIGKILL, keeps
        what Redis acknowledged (with "always"). ``extra_args`` are more
        redis-server options (``--cluster-enabled yes``, ``--replicaof ...``),
        kept for every restart. ``password`` is required of clients (and
        used to reach a master when replicating). ``certificate_dir``: with
        ``tls``, the cert.pem and key.pem to use (shared by the nodes of a
        cluster) instead of a certificate of its own."""
        self.binary = binary or shutil.which("redis-server") or ""
        if not self.binary:
            raise RuntimeError(
                "redis-server is not installed: install it (Debian/Ubuntu: "
                "apt-get install redis-server; macOS: brew install redis)"
            )
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="taskq-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args)
        self.password = password
        if password:
            self.extra_args += ["--requirepass", password, "--masterauth", password]
        self.certs = certificate_dir or self.dir
        if tls and certificate_dir is None:
            make_certificate(self.dir)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.certs}/cert.pem"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _listen_args(self) -> list[str]:
        if not self.tls:
            return ["--port", str(self.port)]
        return ["--port", "0", "--tls-port", str(self.port), *tls_args(self.certs)]

    def _persistence_args(self) -> list[str]:
        if not self.appendonly:
            return ["--appendonly", "no"]
        return ["--appendonly", "yes", "--appendfsync", self.appendfsync]

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                self.binary,
                *self._listen_args(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *self._persistence_args(),
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
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

    def restart(self, down_for: float = 0.0, *, graceful: bool = False) -> None:
        """Kill the server, stay down for ``down_for`` seconds, start it again.

        ``graceful=True`` stops it with SIGTERM (Redis flushes and exits)
        instead of SIGKILL. Port and data directory stay the same.
        """
        if graceful:
            self.stop()
        else:
            self.kill()
        if down_for:
            time.sleep(down_for)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

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
