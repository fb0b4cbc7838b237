"""TaskGate: Terminated is raised only inside a task, once, and never after it."""

from __future__ import annotations

import threading
import time

import pytest

from django_taskq.exceptions import Terminated
from django_taskq.worker.terminate import TaskGate, signal_name


def test_signal_names_are_canonical_and_unknown_ones_refused() -> None:
    assert signal_name("SIGTERM") == signal_name("term") == signal_name(15) == "SIGTERM"
    assert signal_name(" sigkill ") == "SIGKILL"
    for bad in ("SIGNOPE", "", "999", None):
        with pytest.raises(ValueError, match="unknown signal"):
            signal_name(bad)


def test_a_running_thread_gets_terminated_with_the_signal_s_name() -> None:
    gate = TaskGate()
    entered, caught = threading.Event(), []

    def task() -> None:
        gate.enter("t-1")
        try:
            entered.set()
            while True:  # Python code: the exception lands at the next instruction
                time.sleep(0.001)
        except Terminated as exc:
            caught.append(exc.signame)
        finally:
            gate.leave_safely()

    thread = threading.Thread(target=task)
    thread.start()
    assert entered.wait(10)
    assert not gate.terminate({"other"}, "SIGTERM")  # not the task it runs
    assert gate.terminate({"t-1"}, "SIGINT")
    thread.join(10)
    assert caught == ["SIGINT"]


def test_between_tasks_nothing_is_raised() -> None:
    gate = TaskGate()
    assert not gate.terminate({"t-1"}, "SIGTERM")
    gate.enter("t-1")
    gate.leave()
    assert not gate.terminate({"t-1"}, "SIGTERM")
    gate.leave()  # a terminate() that found nothing leaves nothing to take back


def test_raise_here_raises_only_inside_a_task_and_once() -> None:
    gate = TaskGate()
    gate.raise_here("SIGTERM")  # between tasks: nothing
    gate.enter("t-1")
    with pytest.raises(Terminated, match="SIGTERM"):
        gate.raise_here("SIGTERM")
    gate.raise_here("SIGTERM")  # once a run
    gate.leave()
    gate.raise_here("SIGTERM")  # between tasks again: nothing
