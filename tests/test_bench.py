"""Smoke test of ``python -m benchmarks.bench``: it runs end to end and reports every figure.

No timing threshold is asserted: the figures depend on the machine. The
benchmark starts its own redis-server and workers, so this test does not use
the session's Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench import FIGURES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_bench_reports_every_figure(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--tasks",
            "200",
            "--latency",
            "20",
            "--json",
            str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for label, _unit in FIGURES.values():
        assert label in proc.stdout, f"{label!r} missing from:\n{proc.stdout}"
    report = json.loads(out_json.read_text())
    figures = report["figures"]
    assert set(figures) == set(FIGURES)
    for key, value in figures.items():
        assert value > 0, f"{key} = {value}"
    assert report["machine"]["redis"]
