"""The fault tests' figures: one JSON line per test, and a summary table of them.

Each fault test appends what it measured (lost, duplicates, recovery times,
the longest failing ``delay()``, Redis bytes per delayed task, worker RSS
before and after...) to the file named by TASKQ_FAULTS_REPORT (default
``<tmp>/taskq-faults-report.jsonl``), whether it passed or not: the figures
of a failing run are what the worker's engineer needs. ``make faults``
prints the table at the end::

    python -m tests.faults.report [REPORT_FILE]

Standard library only, so it runs without Django or the virtualenv.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ENV = "TASKQ_FAULTS_REPORT"


def report_path() -> Path:
    return Path(os.environ.get(ENV) or Path(tempfile.gettempdir()) / "taskq-faults-report.jsonl")


def append(entry: dict[str, Any], path: Path | None = None) -> None:
    """Append one JSON line (one O_APPEND write, so parallel test processes never mix)."""
    where = path or report_path()
    where.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _number(value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _show(value: Any) -> str:
    """A figure in a few characters: numbers rounded, lists of numbers summarised."""
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(value):
            if len(numbers) <= 4:
                return "[" + ", ".join(_number(float(v)) for v in numbers) + "]"
            return (
                f"n={len(numbers)} max={_number(float(max(numbers)))} "
                f"median={_number(float(statistics.median(numbers)))}"
            )
        return f"{len(value)} items" if len(value) > 4 else json.dumps(value, default=str)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def table(entries: list[dict[str, Any]], width: int = 100) -> str:
    """One block per test: name, outcome and time, then its figures, wrapped."""
    if not entries:
        return "no fault-test figures recorded"
    out = []
    for entry in entries:
        name = str(entry.get("test", "?")).removeprefix("tests/faults/")
        head = (
            f"{name}  [{entry.get('outcome', '?')}, {entry.get('scale', '?')}, "
            f"{_number(float(entry.get('duration_s', 0)))} s]"
        )
        out.append(head)
        line = "    "
        for key, value in (entry.get("figures") or {}).items():
            item = f"{key}={_show(value)}"
            if len(line) + len(item) + 2 > width and line.strip():
                out.append(line.rstrip(", "))
                line = "    "
            line += item + ", "
        if line.strip():
            out.append(line.rstrip(", "))
    passed = sum(1 for e in entries if e.get("outcome") == "passed")
    out.append(f"\n{passed} of {len(entries)} fault tests passed")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else report_path()
    print(f"\n===== fault-test figures ({path})")
    print(table(load(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
