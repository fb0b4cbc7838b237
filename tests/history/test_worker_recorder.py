"""The recorder a worker runs: a process of its own (named taskq-recorder), restarted if it
dies, ended with the worker."""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path
from typing import Any

import pytest

from django_taskq.history.models import TaskRecord
from django_taskq.history.process import RECORDER_NICE
from tests.history.helpers import emit, sent, wait_for
from tests.processes import pool_children, recorder_children

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts: it no longer runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def recorded(task_id: str) -> TaskRecord:
    return wait_for(lambda: TaskRecord.objects.filter(task_id=task_id).first(), what=task_id)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_the_worker_s_recorder_is_a_process_restarted_and_ended_with_it(
    start_worker: Any, broker: Any
) -> None:
    worker = start_worker("-P", "solo")
    emit(broker, "default", [sent("first")])
    recorded("first")
    (recorder,) = wait_for(lambda: recorder_children(worker.pid), what="the recorder process")
    assert pool_children(worker.pid) == []  # a solo worker: the recorder is its one child
    # It yields the CPU to the worker's tasks (nice +10 against its worker).
    assert os.getpriority(os.PRIO_PROCESS, recorder) == os.getpriority(
        os.PRIO_PROCESS, worker.pid
    ) + min(RECORDER_NICE, 19 - os.getpriority(os.PRIO_PROCESS, worker.pid))

    # A recorder that dies is started again, and records again.
    os.kill(recorder, signal.SIGKILL)
    replaced = wait_for(
        lambda: set(recorder_children(worker.pid)) - {recorder},
        timeout=30,
        what="a new recorder process",
    )
    emit(broker, "default", [sent("second")])
    recorded("second")
    assert "history recorder process" in worker.output and "restarting it" in worker.output

    # A worker killed with SIGKILL takes its recorder with it.
    (current,) = replaced
    exited = os.pidfd_open(current)  # readable once it exits
    try:
        os.kill(worker.pid, signal.SIGKILL)
        readable, _, _ = select.select([exited], [], [], 20)
    finally:
        os.close(exited)
    assert readable or gone(current), "the recorder outlived its worker"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_a_recorder_that_cannot_run_still_ends_with_its_killed_worker(
    start_worker: Any, broker: Any
) -> None:
    """The parent-death signal is SIGKILL: nothing the recorder does (or cannot do) delays it.

    A recorder that gets no CPU when its worker dies (niced on a busy
    machine, still starting Django) stands for one that is stopped here:
    SIGTERM would wait until it runs again; SIGKILL ends it at once.
    """
    worker = start_worker("-P", "solo")
    emit(broker, "default", [sent("first")])
    recorded("first")  # so the recorder runs: its parent-death signal is set
    (recorder,) = wait_for(lambda: recorder_children(worker.pid), what="the recorder process")
    exited = os.pidfd_open(recorder)  # readable once it exits
    try:
        os.kill(recorder, signal.SIGSTOP)
        os.kill(worker.pid, signal.SIGKILL)
        readable, _, _ = select.select([exited], [], [], 20)
    finally:
        os.close(exited)
        try:
            os.kill(recorder, signal.SIGKILL)  # a stopped leftover would outlive the test
        except ProcessLookupError:
            pass
    assert readable or gone(recorder), "a stopped recorder outlived its killed worker"
