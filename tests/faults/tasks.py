"""Tasks of the fault tests: each records its own execution (tests/faults/recorder.py).

They run in real worker subprocesses, which load this module because
``tests.faults`` is an installed app (tests/settings.py). Each records
``start`` before its body and ``end`` after it, under its own task id, in
the file named by TASKQ_FAULTS_DIR, never in Redis.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from django_taskq import shared_task
from tests.faults.recorder import END, START, record


@shared_task(bind=True)
def fault_fast(self: Any, n: int = 0) -> int:
    """Return at once."""
    record(self.request.id, START)
    record(self.request.id, END)
    return n


@shared_task(bind=True)
def fault_slow(self: Any, seconds: float, n: int = 0) -> int:
    """Sleep ``seconds``, then return."""
    record(self.request.id, START)
    time.sleep(seconds)
    record(self.request.id, END)
    return n


@shared_task(bind=True)
def fault_suicide(self: Any) -> None:
    """SIGKILL the process running it, on every delivery (a segfault, the OOM killer)."""
    record(self.request.id, START)
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task(bind=True)
def fault_long(self: Any, seconds: float) -> float:
    """Run longer than the heartbeat timeout on a live worker (a visibility timeout's victim)."""
    record(self.request.id, START)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
    record(self.request.id, END)
    return seconds
