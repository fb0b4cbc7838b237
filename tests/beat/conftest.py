"""Fixtures for beat tests: beats in threads (fast, controllable) and in subprocesses (e2e)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from .helpers import BeatProcess


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """admin_client creates a superuser per test; skip PBKDF2's deliberate slowness."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class BeatThread:
    """A Beat running in a thread of the test process."""

    def __init__(self, hostname: str) -> None:
        from django_taskq.beat.service import Beat

        self.beat = Beat(hostname=hostname)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.beat.run, args=(self.stop_event,), daemon=True)

    def start(self) -> BeatThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "beat thread did not stop"


@pytest.fixture
def beat_thread() -> Iterator[type[BeatThread]]:
    started: list[BeatThread] = []

    def start(hostname: str = "thread-beat") -> BeatThread:
        beat = BeatThread(hostname).start()
        started.append(beat)
        return beat

    yield start  # type: ignore[misc]
    for beat in started:
        if beat.thread.is_alive():
            beat.stop()


@pytest.fixture
def beat_process() -> Iterator[type[BeatProcess]]:
    started: list[BeatProcess] = []

    def start(hostname: str, **env: str) -> BeatProcess:
        beat = BeatProcess(hostname, env=env).start()
        started.append(beat)
        return beat

    yield start  # type: ignore[misc]
    for beat in started:
        beat.kill()
