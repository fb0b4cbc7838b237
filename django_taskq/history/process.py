"""The worker's history recorder, in a process of its own beside the worker.

A recorder spends most of its time in Django's ORM, turning events into
rows (``bulk_create``, hundreds of microseconds a row). On a thread of a
worker it would hold that worker's GIL for as long: a solo worker running
tasks, or a prefork parent beating its children's hearts, would pay for
every row. So the worker starts the recorder as a process once it is up
(``start_in_worker``), and a small supervising thread of the worker:

- restarts it if it dies, after a pause that doubles up to 30 s;
- stops it with SIGTERM when the worker stops, and waits for it to release
  its lease (so another worker's recorder takes over at once);
- is its parent thread for Linux's parent-death signal, so a worker killed
  with SIGKILL takes its recorder with it at once (its lease then lapses).

That signal is SIGKILL, not the SIGTERM of a warm stop: a recorder has
nothing it must finish (what it read and did not acknowledge stays pending
in Redis, and the next recorder reads it again into the same rows), and a
graceful end could take long. The recorder runs niced on a busy machine,
and may still be starting Django when its worker dies; it then went on for
more than ten seconds after its worker (seen in CI, under load).

The recorder runs at a lower CPU priority (``nice`` +RECORDER_NICE): history
is written behind the work, so when the worker's tasks and the recorder want
the same core the tasks come first and the recorder catches up when they
leave it time. Its events wait in the capped events streams meanwhile.

The recorder is a fresh interpreter (``python -m
django_taskq.history.process``), not a fork of the worker: a fork copies
every lock as it was, and a worker's other threads (the consumer, the
heartbeat, housekeeping) may be inside an import at that moment. A forked
recorder then waited forever on that module's import lock, on its very
first line, never named and never recording (seen under load, rarely). A
new interpreter holds no lock it did not take; it sets Django up from the
worker's ``DJANGO_SETTINGS_MODULE`` and ``sys.path``, and logs to the
worker's standard error at the worker's level. It costs about a second of
start-up, once per recorder.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.history")

#: The recorder process's name (``ps -o comm``, /proc/<pid>/comm), on Linux.
PROCESS_NAME = "taskq-recorder"
#: Longest pause before restarting a recorder that died.
MAX_RESTART_PAUSE = 30.0
#: How much lower the recorder's CPU priority is than its worker's (``nice``).
RECORDER_NICE = 10
#: Seconds the worker waits, at its end, for the recorder to release its lease.
STOP_WAIT = 10.0


def _recorder_main(hostname: str, parent: int, level: int) -> None:
    """The recorder process: ``parent`` is the worker's pid, ``level`` its log level."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: end with the worker, at once
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
    import multiprocessing

    import django

    multiprocessing.current_process().name = PROCESS_NAME  # %(processName)s in its log lines
    django.setup()
    from django_taskq.management.foreground import configure_worker_logging

    configure_worker_logging(level)  # the worker's own logging (taskq_worker)
    from django_taskq.history.recorder import run_recorder_process

    run_recorder_process(stop, hostname=hostname)


def _command(hostname: str) -> tuple[list[str], dict[str, str]]:
    """The recorder's command line and environment: this interpreter, path and settings."""
    from django.conf import settings

    env = dict(os.environ)
    module = getattr(settings, "SETTINGS_MODULE", None) or env.get("DJANGO_SETTINGS_MODULE")
    if not module:
        raise RuntimeError(
            "the history recorder process needs DJANGO_SETTINGS_MODULE (settings configured "
            "in code cannot be passed on); set it, or run manage.py taskq_recorder apart"
        )
    env["DJANGO_SETTINGS_MODULE"] = module
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if isinstance(p, str) and p)
    level = logging.getLogger("django_taskq").getEffectiveLevel()
    command = [sys.executable, "-m", __name__, hostname, str(os.getpid()), str(level)]
    return command, env


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
        """Wait for the watcher to have stopped the recorder (the worker's exit).

        With ``stop`` set, the recorder gets its SIGTERM here at once: the
        watcher notices ``stop`` only when its wait on the process ends,
        up to a second later, and a stopping worker waits for its recorder.
        """
        process = self.process
        if self.stop.is_set() and process is not None and process.poll() is None:
            process.terminate()  # it exits, which ends the watcher's wait too
        self.watcher.join(timeout)

    def _spawn(self) -> None:
        command, env = _command(self.hostname)
        # Started from this (the watcher) thread: the parent-death signal
        # fires when it ends, which is when the worker ends.
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def _watch(self) -> None:
        """Start the recorder, restart it when it dies, stop it with the worker."""
        pause = 1.0
        try:
            self._spawn()
        except (RuntimeError, OSError) as exc:
            logger.error("history recorder process not started: %s", exc)
            return
        started = time.monotonic()
        while not self.stop.is_set():
            self._wait(1.0)  # returns at once when it exits
            if self.stop.is_set() or self._alive():
                continue
            logger.warning(
                "history recorder process %s exited (code %s); restarting it in %.0fs",
                self.process.pid,
                self.process.returncode,
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
        if process is None or not self._alive():
            return
        process.terminate()  # SIGTERM: it finishes its batch and releases the lease
        self._wait(STOP_WAIT)
        if self._alive():
            logger.warning("history recorder process %s did not stop; killing it", process.pid)
            process.kill()
            self._wait(1.0)


def enabled() -> bool:
    """True when a worker runs a recorder: TASKQ_HISTORY, and events to record."""
    return bool(taskq_settings.HISTORY) and bool(taskq_settings.EVENTS)


if __name__ == "__main__":  # the recorder process (RecorderProcess._spawn)
    _recorder_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
