"""Smoke test of ``python -m benchmarks.curves``: every part runs at a tiny N and reports.

The same harness as ``make bench-curves`` (its own redis-server and real
workers; not the session's Redis), with 200 tasks a part. No timing is
asserted: the figures depend on the machine. What is asserted holds on any
machine: every part reports, no ETA task ran early, every memory part was
found and deleted, and the worker was sampled at every tenth of its drain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.curves import KINDS, TENTHS, crossing

ROOT = Path(__file__).resolve().parent.parent
N = 200


@pytest.mark.e2e
def test_curves_runs_every_part_at_a_tiny_scale(tmp_path: Path) -> None:
    out_json = tmp_path / "curves.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "DJANGO_"))}
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.curves", "--scales", str(N),
            "--drain-tasks", str(N), "--drain-configs", "off,history", "--eta-tasks", str(N),
            "--eta-window", "1", "--eta-lead", "2", "--queue-tasks", str(N),
            "--queue-counts", "1,3", "--json", str(out_json),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for heading in ("Redis memory", "Drain, one solo worker", "ETA lateness", "over Q queues"):
        assert heading in proc.stdout, proc.stdout
    report = json.loads(out_json.read_text())

    assert [(m["kind"], m["tasks"]) for m in report["memory"]] == [(k, N) for k in KINDS]
    for m in report["memory"]:
        # Every result (or PENDING) record was found and deleted, and cost memory.
        assert m["deleted_keys"]["records"] == N, m
        assert m["record_bytes"] > 0 and m["total_bytes"] > 0, m
        # The stream (queued; after a drain, empty but with its group) or the delayed set.
        assert m["deleted_keys"]["messages"] == 1, m
    result = report["memory"][2]
    assert result["drain"]["tasks"] == N

    assert [d["config"] for d in report["drain"]] == ["off", "history"]
    for drain in report["drain"]:
        assert drain["from_spawn_per_s"] > 0
        assert drain["samples"] and drain["samples"][-1]["done"] == N
        assert len(drain["samples"]) <= TENTHS
        assert all(s["rss_kib"] > 0 and s["pss_kib"] > 0 for s in drain["samples"])

    [eta] = report["eta"]
    assert eta["tasks"] == N
    assert eta["sent_before_first_due_s"] > 0
    assert eta["early"] == 0 and eta["earliest_ms"] >= 0
    assert eta["p50_ms"] <= eta["p99_ms"] <= eta["max_ms"]

    assert [(c["queues"], c["workers"], c["tasks"]) for c in report["queues"]] == [
        (1, 1, N),
        (3, 1, N),
    ]
    assert all(c["tasks_per_s"] > 0 for c in report["queues"])


def test_crossing_interpolates_between_polls() -> None:
    polls = [(10.0, 0), (11.0, 100), (13.0, 300)]
    assert crossing(polls, 50) == pytest.approx(10.5)
    assert crossing(polls, 200) == pytest.approx(12.0)
    assert crossing(polls, 300) == pytest.approx(13.0)
