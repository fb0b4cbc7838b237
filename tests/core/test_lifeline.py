"""A forked helper whose worker died before it set its parent-death signal exits at once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from django_taskq.worker.lifeline import die_with_parent


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="prctl is Linux's")
def test_a_child_whose_parent_died_before_the_signal_was_set_exits() -> None:
    report_r, report_w = os.pipe()  # the helper writes here if it survives
    go_r, go_w = os.pipe()  # the test says "your worker is dead and reaped" here
    pid = os.fork()
    if pid == 0:  # the "worker"
        try:
            os.close(report_r)
            os.close(go_w)
            worker = os.getpid()
            if os.fork() == 0:  # the helper it forks
                os.read(go_r, 1)  # blocks until the test has reaped the worker
                die_with_parent(signal.SIGKILL, worker)
                os.write(report_w, b"survived")
                os._exit(0)
        finally:
            os._exit(0)  # the worker dies right after the fork
    os.close(report_w)
    os.close(go_r)
    os.waitpid(pid, 0)  # the worker is gone: the helper is someone else's child now
    os.write(go_w, b"x")
    os.close(go_w)
    with os.fdopen(report_r, "rb") as report:
        assert report.read() == b""  # EOF once the helper exited, having written nothing


def test_a_child_whose_parent_lives_goes_on() -> None:
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_r)
            die_with_parent(signal.SIGKILL, os.getppid())
            os.write(report_w, b"running")
        finally:
            os._exit(0)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        assert report.read() == b"running"
    os.waitpid(pid, 0)
