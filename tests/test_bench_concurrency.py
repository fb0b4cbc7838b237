"""Smoke test of ``python -m benchmarks.concurrency``: tiny sizes, every figure reported.

No timing threshold is asserted (the figures depend on the machine); the
benchmark starts its own redis-server and workers and checks every result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_concurrency_reports_prefork_and_threads_figures(tmp_path: Path) -> None:
    out_json = tmp_path / "concurrency.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.concurrency", "--tasks", "200", "--repeat", "1",
            "--threads", "4", "--nap-ms", "2", "--seconds", "0.5", "--json", str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| -c 2 / -c 1 |" in proc.stdout
    assert "| -P threads -c 4 | 1,000 | 2,000 |" in proc.stdout
    report = json.loads(out_json.read_text())
    assert report["prefork"]["ratio"] > 0
    assert [len(r) for r in report["prefork"]["runs"].values()] == [1, 1]
    (row,) = report["threads"]
    assert (row["threads"], row["tasks"]) == (4, 1000)
    assert row["share_of_ideal"] > 0
