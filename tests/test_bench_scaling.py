"""Smoke test of ``python -m benchmarks.bench --scaling``: one tiny cell, every figure reported.

Single Redis, 2 workers, 2 queues, 300 tasks. No timing threshold is
asserted (the figures depend on the machine); the benchmark starts its own
redis-server and workers, so this test does not use the session's Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_scale import COLUMNS, HISTORY_CONFIGS, PROJECT_CORES, project

ROOT = Path(__file__).resolve().parent.parent

POSITIVE = (
    "tasks_per_s",
    "drain_s",
    "redis_us_per_task",
    "redis_enqueue_us_per_task",
    "busiest_master_us_per_task",
    "busiest_master_total_us_per_task",
    "worker_us_per_task",
    "worker_gross_us_per_task",
    "worker_cpu_s",
)


def run_scaling(out_json: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.bench --scaling`` on one private Redis, the JSON to ``out_json``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQ_")}
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.bench", "--scaling", *args,
            "--topologies", "single", "--json", str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.e2e
def test_scaling_reports_every_figure(tmp_path: Path) -> None:
    out_json = tmp_path / "scaling.json"
    proc = run_scaling(out_json, "--tasks", "300", "--workers", "2", "--queues", "2")
    for key, label, _fmt in COLUMNS:
        if key != "config":  # the settings column is --history-cost's
            assert label in proc.stdout, f"{label!r} missing from:\n{proc.stdout}"
    report = json.loads(out_json.read_text())
    [cell] = report["cells"]
    assert (cell["topology"], cell["masters"], cell["queues"], cell["workers"]) == (
        "single", 1, 2, 2,
    )  # fmt: skip
    assert cell["tasks"] == 300
    for key in POSITIVE:
        assert cell[key] > 0, f"{key} = {cell[key]}"
    assert cell["samples"] >= 2
    [projection] = report["projections"]
    for cores in PROJECT_CORES[1:]:
        assert projection[f"{cores}_cores"] >= 0
    assert report["machine"]["redis"]


@pytest.mark.e2e
def test_history_cost_runs_each_setting_and_pairs_them_by_round(tmp_path: Path) -> None:
    """--history-cost: off, events and history cells, with each against off."""
    out_json = tmp_path / "cost.json"
    proc = run_scaling(
        out_json, "--history-cost", "--tasks", "200", "--workers", "1", "--queues", "1",
        "--repeat", "2",
    )  # fmt: skip
    assert "history cost against off" in proc.stdout, proc.stdout
    report = json.loads(out_json.read_text())
    assert [c["config"] for c in report["cells"]] == list(HISTORY_CONFIGS)
    for cell in report["cells"]:
        assert len(cell["runs"]) == 2 and cell["tasks_per_s"] > 0
    costs = {c["config"]: c for c in report["history_cost"]}
    assert set(costs) == {"events", "history"}
    for cost in costs.values():
        assert cost["rounds"] == 2
        low, high = cost["drain_slower_pct_range"]
        assert low <= cost["drain_slower_pct"] <= high


def test_projection_is_the_smaller_of_the_busiest_master_and_the_cores() -> None:
    cell = {
        "masters": 1,
        "worker_us_per_task": 150.0,
        "redis_us_per_task": 30.0,
        "redis_enqueue_us_per_task": 20.0,
        "busiest_master_total_us_per_task": 50.0,
    }
    # 2 cores: 2e6 / (150 + 50) = 10,000 tasks/s, under one master's 1e6 / 50.
    assert project(cell, 2) == pytest.approx(10_000)
    # 16 cores: the master's core is full at 20,000 tasks/s.
    assert project(cell, 16) == pytest.approx(20_000)
    # More masters than cores: no projection.
    assert project({**cell, "masters": 3}, 2) == 0.0
