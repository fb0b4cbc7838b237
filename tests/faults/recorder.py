"""Execution recorder: what ran, written by the tasks themselves, outside the broker.

The faults under test (Redis restarts, dropped connections, killed
processes) can lose anything kept in Redis, so the evidence of what ran
lives in a plain file instead: every fault task appends one line when it
starts and one when it ends::

    <task id> <pid> <start|end> <wall time>

Each line is written by a single ``os.write`` on a descriptor opened with
``O_APPEND`` and is far below 4 KiB, so lines written by many processes at
once never interleave (Linux appends each write whole to a regular file).
The file lives in the directory named by TASKQ_FAULTS_DIR, which each test
sets before it starts its workers.

``Recorder`` reads the file incrementally (tests poll it while thousands of
tasks run) and ``Tally`` turns it into the figures the tests assert on:
executions started and finished per task id, lost = sent but never
finished, duplicates = finished more than once.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ENV_DIR = "TASKQ_FAULTS_DIR"
FILE_NAME = "executions.log"
#: Longest line we write; O_APPEND writes this small never interleave.
MAX_LINE = 4096
START, END = "start", "end"


def log_path(directory: str | os.PathLike[str] | None = None) -> Path:
    """The executions file in ``directory`` (default: $TASKQ_FAULTS_DIR)."""
    where = directory if directory is not None else os.environ.get(ENV_DIR)
    if not where:
        raise RuntimeError(
            f"{ENV_DIR} is not set: fault tasks record their executions in that directory "
            "(tests/faults/conftest.py sets it for each test)"
        )
    return Path(where) / FILE_NAME


def record(task_id: str, event: str) -> None:
    """Append ``<task id> <pid> <event> <time>`` as one atomic write."""
    line = f"{task_id} {os.getpid()} {event} {time.time():.6f}\n".encode()
    if len(line) > MAX_LINE or b" " in task_id.encode() or b"\n" in task_id.encode():
        raise ValueError(f"cannot record task id {task_id!r}")
    fd = os.open(log_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Event:
    task_id: str
    pid: int
    kind: str  # START or END (or another word a task chose, e.g. "unpickled")
    at: float  # wall time (time.time())


@dataclass
class Tally:
    """Every event read so far, indexed by task id."""

    events: list[Event] = field(default_factory=list)
    started: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    by_id: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.by_id[event.task_id].append(event)
        if event.kind == START:
            self.started[event.task_id] += 1
        elif event.kind == END:
            self.finished[event.task_id] += 1

    def lost(self, sent: Iterable[str]) -> set[str]:
        """Sent ids that never finished."""
        return {task_id for task_id in sent if not self.finished[task_id]}

    def duplicates(self) -> dict[str, int]:
        """Ids that finished more than once, with how often."""
        return {task_id: n for task_id, n in self.finished.items() if n > 1}

    def ran(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that left any trace at all (started, ended, or other)."""
        return {task_id for task_id in ids if task_id in self.by_id}

    def open_runs(self, pids: Iterable[int]) -> set[str]:
        """Ids whose last event by one of ``pids`` is a start (running when it died)."""
        wanted = set(pids)
        last: dict[tuple[str, int], str] = {}
        for event in self.events:
            if event.pid in wanted:
                last[(event.task_id, event.pid)] = event.kind
        return {task_id for (task_id, _), kind in last.items() if kind == START}

    def ends(self, task_id: str) -> list[float]:
        return sorted(e.at for e in self.by_id.get(task_id, ()) if e.kind == END)

    def pids(self) -> set[int]:
        return {e.pid for e in self.events}


class Recorder:
    """Incremental reader of one test's executions file."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = log_path(directory)
        self.tally = Tally()
        self._offset = 0
        self._rest = b""

    def read(self) -> Tally:
        """Read what was appended since the last call; return the running tally."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.tally
        self._offset += len(chunk)
        data = self._rest + chunk
        lines = data.split(b"\n")
        self._rest = lines.pop()  # an incomplete last line waits for the next read
        for raw in lines:
            task_id, pid, kind, at = raw.decode().split(" ")
            self.tally.add(Event(task_id, int(pid), kind, float(at)))
        return self.tally

    def wait(
        self, condition: Callable[[Tally], bool], timeout: float, interval: float = 0.05
    ) -> bool:
        """Poll until ``condition(tally)`` holds; False once ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        while True:
            if condition(self.read()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def wait_finished(self, ids: Iterable[str], timeout: float) -> bool:
        """Wait until every one of ``ids`` finished at least once."""
        wanted = set(ids)

        def done(tally: Tally) -> bool:
            wanted.difference_update([i for i in list(wanted) if tally.finished[i]])
            return not wanted

        return self.wait(done, timeout)
