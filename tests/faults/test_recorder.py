"""Self-test of the execution recorder (tests/faults/recorder.py) and the report table.

Many processes append at once: every line must arrive whole, and the
incremental reader must count each exactly once however the reads fall.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from tests.faults import report
from tests.faults.recorder import END, START, Recorder, record

pytestmark = pytest.mark.faults

PROCESSES, PER_PROCESS = 4, 3000


def _append_many(prefix: str) -> None:
    for n in range(PER_PROCESS):
        record(f"{prefix}-{n}", START)
        record(f"{prefix}-{n}", END)
        if n % 3 == 0:
            record(f"{prefix}-{n}", END)  # a duplicate every third task


def test_concurrent_appends_never_interleave(faults_dir: Path, recorder: Recorder) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(f"p{i}",)) for i in range(PROCESSES)]
    for proc in procs:
        proc.start()
    reads = 0
    while any(proc.is_alive() for proc in procs):
        recorder.read()  # reads that fall in the middle of lines
        reads += 1
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0
    tally = recorder.read()
    sent = [f"p{i}-{n}" for i in range(PROCESSES) for n in range(PER_PROCESS)]
    assert len(tally.events) == PROCESSES * PER_PROCESS * 2 + PROCESSES * (PER_PROCESS // 3)
    assert tally.lost(sent) == set()
    assert len(tally.duplicates()) == PROCESSES * (PER_PROCESS // 3)
    assert len(tally.pids()) == PROCESSES
    assert reads > 1


def test_open_runs_and_lost(faults_dir: Path, recorder: Recorder) -> None:
    record("a", START)
    record("a", END)
    record("b", START)  # died running it
    tally = recorder.read()
    assert tally.open_runs([os.getpid()]) == {"b"}
    assert tally.lost(["a", "b", "c"]) == {"b", "c"}
    assert tally.ran(["a", "b", "c"]) == {"a", "b"}


def test_record_refuses_ids_that_would_break_a_line(faults_dir: Path) -> None:
    with pytest.raises(ValueError):
        record("two words", START)


def test_report_table(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    report.append(
        {"test": "tests/faults/test_x.py::t", "outcome": "failed", "scale": "small",
         "duration_s": 1.5, "figures": {"lost": 3, "recovery_s": [0.5, 1.25, 2.0, 3.0, 9.5]}},
        path,
    )  # fmt: skip
    text = report.table(report.load(path))
    assert "test_x.py::t  [failed, small, 1.5 s]" in text
    assert "lost=3" in text and "n=5 max=9.5 median=2" in text
    assert "0 of 1 fault tests passed" in text
