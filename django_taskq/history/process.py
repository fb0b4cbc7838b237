"""The worker's history recorder, in a process of its own beside the worker.

A recorder spends most of its time in Django's ORM, turning events into
rows (``bulk_create``, hundreds of microseconds a row). On a thread of a
worker it would hold that worker's GIL for as long: a solo worker running
tasks, or a prefork parent beating its children's hearts, would pay for
every row. So the worker forks the recorder once it is up
(``start_in_worker``), and a small supervising thread of the worker:

- restarts it if it dies, after a pause that doubles up to 30 s;
- stops it with SIGTERM when the worker stops, and waits for it to release
  its lease (so another worker's recorder takes over at once);
- is its parent thread for Linux's parent-death signal, so a worker killed
  with SIGKILL takes its recorder with it (its lease then lapses).

The recorder runs at a lower CPU priority (``nice`` +RECORDER_NICE): history
is written behind the work, so when the worker's tasks and the recorder want
the same core the tasks come first and the recorder catches up when they
leave it time. Its events wait in the capped events streams meanwhile.

The child starts from the fork of a worker that has set Django up: it
builds its own database connection (none is open at the fork) and its own
Redis connections (redis-py's pools start afresh in a new process).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.history")

_ctx = multiprocessing.get_context("fork")

#: The recorder process's name (``ps -o comm``, /proc/<pid>/comm), on Linux.
PROCESS_NAME = "taskq-recorder"
#: Longest pause before restarting a recorder that died.
MAX_RESTART_PAUSE = 30.0
#: How much lower the recorder's CPU priority is than its worker's (``nice``).
RECORDER_NICE = 10
#: Seconds the worker waits, at its end, for the recorder to release its lease.
STOP_WAIT = 10.0


def _recorder_main(hostname: str, parent: int) -> None:
    """Entry point of the recorder process (runs after the fork); ``parent``: the worker's pid."""
    from django_taskq.history.recorder import run_recorder

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: end with the worker
        # PR_SET_NAME: `ps`, `top` and /proc/<pid>/comm tell it from the pool's children.
        libc.prctl(15, PROCESS_NAME.encode())
    except OSError:  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # the worker died before the signal was set (worker/lifeline.py)
        os._exit(1)
    try:
        os.nice(RECORDER_NICE)
    except OSError:  # pragma: no cover - not allowed here: same priority then
        pass
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run_recorder(stop, hostname=hostname)


class RecorderProcess:
    """Run, watch and stop the worker's recorder process."""

    def __init__(self, stop: threading.Event, hostname: str) -> None:
        self.stop = stop
        self.hostname = hostname
        self.process: Any = None
        self.restarts = 0
        self.watcher = threading.Thread(
            target=self._watch, name="taskq-recorder-watch", daemon=True
        )

    def start(self) -> None:
        self.watcher.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the watcher to have stopped the recorder (the worker's exit)."""
        self.watcher.join(timeout)

    def _spawn(self) -> None:
        from django.db import connections

        connections.close_all()  # this thread's, if any: never fork with one open
        self.process = _ctx.Process(
            target=_recorder_main,
            args=(self.hostname, os.getpid()),
            name="taskq-recorder",
            daemon=True,
        )
        self.process.start()

    def _watch(self) -> None:
        """Fork the recorder, restart it when it dies, stop it with the worker."""
        pause = 1.0
        self._spawn()
        started = time.monotonic()
        while not self.stop.is_set():
            self.process.join(timeout=1.0)  # returns at once when it exits
            if self.stop.is_set() or self.process.is_alive():
                continue
            logger.warning(
                "history recorder process %s exited (code %s); restarting it in %.0fs",
                self.process.pid,
                self.process.exitcode,
                pause,
            )
            if self.stop.wait(pause):
                break
            pause = 1.0 if time.monotonic() - started > 60 else min(pause * 2, MAX_RESTART_PAUSE)
            self.restarts += 1
            self._spawn()
            started = time.monotonic()
        self._stop_process()

    def _stop_process(self) -> None:
        process = self.process
        if process is None or not process.is_alive():
            return
        process.terminate()  # SIGTERM: it finishes its batch and releases the lease
        process.join(STOP_WAIT)
        if process.is_alive():
            logger.warning("history recorder process %s did not stop; killing it", process.pid)
            process.kill()
            process.join(1.0)


def enabled() -> bool:
    """True when a worker runs a recorder: TASKQ_HISTORY, and events to record."""
    return bool(taskq_settings.HISTORY) and bool(taskq_settings.EVENTS)
