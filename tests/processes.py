"""The child processes of a worker, told apart: its pool's children and its history recorder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from django_taskq.history.process import PROCESS_NAME

#: In the recorder's command line (python -m django_taskq.history.process ...).
RECORDER_MODULE = b"django_taskq.history.process"


def comm(pid: int) -> str:
    """The process's name (/proc/<pid>/comm), or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def all_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def is_recorder(pid: int) -> bool:
    """The recorder names itself once started; from its exec on, its command line says it."""
    if comm(pid) == PROCESS_NAME:
        return True
    try:
        return RECORDER_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def pool_children(pid: int) -> list[int]:
    """The worker's pool children: every child but its history recorder process."""
    return [child for child in all_children(pid) if not is_recorder(child)]


def recorder_children(pid: int) -> list[int]:
    """The worker's history recorder process (a list: none, or one)."""
    return [child for child in all_children(pid) if is_recorder(child)]
