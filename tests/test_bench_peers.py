"""Smoke test of the peers benchmark (``python -m benchmarks.peers``): the harness works.

django_taskq's rows always run, at a tiny N, through the same harness that
``make bench-peers`` uses (its own redis-server and real workers; not the
session's Redis). Each peer runs only where its virtualenv (.venv-peers,
made by scripts/bench-peers) exists; the test is skipped otherwise, so the
suite installs no peer. No timing is asserted: the figures depend on the
machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.peers.run import FIGURES, MARKER_END, MARKER_START, rotated

ROOT = Path(__file__).resolve().parent.parent
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEERS = ("celery", "huey", "dramatiq", "rq")
#: Figures a row may leave out: Huey has no bulk enqueue.
OPTIONAL = {"enqueue_bulk_per_s"}


def run_peers(tmp_path: Path, systems: str) -> tuple[dict[str, object], str, str]:
    """The harness on ``systems``, 30 tasks, 5 round trips, 1 round; (report, docs, stdout)."""
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n{MARKER_START}\nold table\n{MARKER_END}\n\nAfter.\n")
    out = tmp_path / "peers.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "DJANGO_"))}
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.peers", "--systems", systems, "--tasks", "30",
            "--latency", "5", "--rounds", "1", "--json", str(out), "--write-docs", str(docs),
            "--peers-python", str(PEERS_PYTHON),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), docs.read_text(), proc.stdout


def check_rows(report: dict[str, object], system: str) -> None:
    rows = report["rows"]
    assert isinstance(rows, list)
    assert [(r["system"], r["variant"]) for r in rows] == [
        (system, "defaults"),
        (system, "tuned"),
    ]
    for row in rows:
        assert row["rounds"] == 1, row
        for key in FIGURES:
            value = row["figures"][key]
            if value is None and key in OPTIONAL and not row["bulk_api"]:
                continue
            assert value > 0, f"{system} {row['variant']}: {key} = {value}"


@pytest.mark.e2e
def test_the_harness_measures_django_taskq_and_writes_the_table(tmp_path: Path) -> None:
    report, docs, stdout = run_peers(tmp_path, "taskq")
    check_rows(report, "taskq")
    assert report["machine"]["redis"]
    # The table replaced the old one between the markers; the rest of the file is kept.
    assert "old table" not in docs
    assert docs.startswith("# Benchmarks\n\n" + MARKER_START)
    assert docs.endswith(MARKER_END + "\n\nAfter.\n")
    for line in ("| django_taskq (defaults) |", "| django_taskq (tuned) |", "add.delay_many()"):
        assert line in docs and line in stdout


@pytest.mark.e2e
@pytest.mark.parametrize("system", PEERS)
def test_the_harness_measures_a_peer(tmp_path: Path, system: str) -> None:
    if not PEERS_PYTHON.exists():
        pytest.skip(f"no {PEERS_PYTHON.relative_to(ROOT)}: scripts/bench-peers makes it")
    report, docs, _stdout = run_peers(tmp_path, system)
    check_rows(report, system)
    assert "(defaults) |" in docs and "(tuned) |" in docs


def test_each_round_starts_one_row_further() -> None:
    rows = [("a", "defaults"), ("a", "tuned"), ("b", "defaults")]
    assert rotated(rows, 0) == rows
    assert rotated(rows, 1) == [rows[1], rows[2], rows[0]]
    assert rotated(rows, 3) == rows
