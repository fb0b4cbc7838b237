"""Run queued tasks for a web request: a burst ``taskq_worker`` in a child process.

The run/ and run-one/ endpoints exist for hosts where no worker stays up
between requests (Cloud Run or App Engine called by Cloud Scheduler, a
webhook). The request starts ``taskq_worker --burst --pool solo`` as a child
process and waits for it, so a task still runs on a real worker: with its
time limits, heartbeat, crash recovery, events and history. Running it in
the request's own thread would lose all of that (the solo pool's time limits
use SIGALRM, which only a main thread can take) and would let a task's
crash take the web process with it.

The child gets this process's settings module, ``sys.path`` and
environment, so it sees the project exactly as the web process does. Past
``TASKQ_ENDPOINT_RUN_TIMEOUT`` it is stopped the way an operator stops a
worker: SIGTERM (warm: the running task may finish), SIGTERM again after a
grace (cold: the task is interrupted and its message handed back), SIGKILL
last (the message then comes back once the worker's heartbeat is stale).
Nothing is lost on any of these paths.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_taskq.conf import taskq_settings

#: Seconds between the warm stop, the cold stop and the kill of a child past its timeout.
STOP_GRACE = 10.0
#: Seconds of one wait for an ``until`` task's result before the child is looked at again.
UNTIL_SLICE = 1.0
#: Lines of the child's output kept for an error answer.
TAIL_LINES = 20


@dataclass(frozen=True)
class BurstRun:
    """What one burst worker did."""

    #: Messages it ended (run, revoked, dead-lettered).
    ended: int
    #: Of those, the ones that failed or were dead-lettered.
    failed: int
    exit_code: int
    #: True when the timeout stopped it before the queues were empty.
    timed_out: bool
    #: The end of what it printed, for an answer when it did not run as it should.
    output: str


def command(queues: list[str], max_tasks: int | None, summary: str) -> list[str]:
    """The child's command line: this Python, ``django``'s command runner, taskq_worker."""
    argv = [sys.executable, "-m", "django", "taskq_worker", "--burst", "--pool", "solo"]
    argv += ["--loglevel", "WARNING", "--summary", summary]
    if queues:
        argv += ["-Q", ",".join(queues)]
    if max_tasks:
        argv += ["--max-tasks", str(max_tasks)]
    return argv


def environment() -> dict[str, str]:
    """This process's environment, plus what lets the child load the same project."""
    env = dict(os.environ)
    # manage.py and wsgi.py set the variable; override_settings hides SETTINGS_MODULE.
    module = env.get("DJANGO_SETTINGS_MODULE") or getattr(settings, "SETTINGS_MODULE", None)
    if not module:
        raise ImproperlyConfigured(
            "run/ and run-one/ start taskq_worker with this project's settings module, and "
            "this process has none (settings.configure()): set DJANGO_SETTINGS_MODULE"
        )
    env["DJANGO_SETTINGS_MODULE"] = str(module)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(
    queues: list[str],
    max_tasks: int | None = None,
    timeout: float | None = None,
    until: str | None = None,
) -> BurstRun:
    """Run what ``queues`` hold now (at most ``max_tasks``) in a burst worker; wait for it.

    ``until``: a task id; the worker is stopped (warm) as soon as that task
    has ended, wherever it ran, rather than when the queues are empty.
    """
    limit = float(timeout if timeout is not None else taskq_settings.ENDPOINT_RUN_TIMEOUT)
    with tempfile.TemporaryDirectory(prefix="taskq-burst-") as scratch:
        summary = os.path.join(scratch, "summary.json")
        with open(os.path.join(scratch, "output.log"), "w+", encoding="utf-8") as log:
            child = subprocess.Popen(
                command(queues, max_tasks, summary),
                env=environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a signal to the web server's group spares it
            )
            timed_out = not _wait(child, time.monotonic() + limit, until)
            if child.poll() is None:
                _stop(child)
            log.seek(0)
            output = "".join(log.readlines()[-TAIL_LINES:])
        ended = failed = 0
        try:
            with open(summary, encoding="utf-8") as found:
                report = json.load(found)
            ended, failed = int(report["ended"]), int(report["failed"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # it stopped before its summary (a refused flag, a kill): nothing counted
    return BurstRun(ended, failed, int(child.returncode), timed_out, output)


def _wait(child: subprocess.Popen[bytes], deadline: float, until: str | None) -> bool:
    """Wait for the child to end, or for task ``until`` to; False if the deadline came first.

    The task is waited for the way ``AsyncResult.get()`` waits (a blocking
    pop on Redis, woken by the result's write), a second at a time so that
    a child that ends first (the task was not in its queues) is seen.
    """
    from django_taskq.result import AsyncResult

    while child.poll() is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if until is None:
            try:
                child.wait(remaining)
            except subprocess.TimeoutExpired:
                return False
            return True
        try:
            AsyncResult(until).get(timeout=min(remaining, UNTIL_SLICE), propagate=False)
        except TimeoutError:
            continue
        return True  # the task ended: _stop() stops the child warm
    return True


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Warm stop, then cold, then kill: each after STOP_GRACE seconds if still running."""
    for signum in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            return
        try:
            child.wait(STOP_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue
    child.wait()


__all__ = ["BurstRun", "command", "environment", "run"]
