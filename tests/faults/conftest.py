"""Fixtures of the fault tests: a recorder directory per test, figures, faults env.

- Every test gets its own TASKQ_FAULTS_DIR (set in os.environ, so workers it
  starts inherit it) and a ``recorder`` reading what ran there.
- ``figures`` is a dict the test fills with what it measured; it is written
  to the report (tests/faults/report.py) after the test, passed or failed,
  together with the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults import report
from tests.faults.recorder import ENV_DIR, Recorder
from tests.faults.scale import SCALE


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call" or (rep.when == "setup" and rep.failed):
        item.stash[_outcome] = rep.outcome
    return rep


_outcome = pytest.StashKey[str]()


@pytest.fixture
def faults_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "executions"
    where.mkdir()
    monkeypatch.setenv(ENV_DIR, str(where))
    return where


@pytest.fixture
def recorder(faults_dir: Path) -> Recorder:
    return Recorder(faults_dir)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    data: dict[str, Any] = {}
    started = time.monotonic()
    yield data
    report.append(
        {
            "test": request.node.nodeid,
            "scale": SCALE.name,
            "outcome": request.node.stash.get(_outcome, "error"),
            "duration_s": round(time.monotonic() - started, 2),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "figures": data,
        }
    )
