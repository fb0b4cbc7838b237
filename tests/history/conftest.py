"""Fixtures of the recorder tests: a recorder in a thread of this process.

Events are written straight into the streams (``helpers.emit``), in the
contract's format, so these tests depend on no producer or worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_taskq.history.recorder import Recorder


@pytest.fixture
def start_recorder() -> Iterator[Callable[..., Recorder]]:
    """``start_recorder()`` runs a Recorder on a thread until the test ends."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(lease_seconds: float = 2.0, **options: Any) -> Recorder:
        stop = threading.Event()
        recorder = Recorder(stop, lease_seconds=lease_seconds, **options)
        thread = threading.Thread(target=recorder.run, name="test-recorder", daemon=True)
        thread.start()
        running.append((stop, thread))
        return recorder

    yield start
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(10)
        assert not thread.is_alive(), "the recorder did not stop"
