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


#: Figures shown as columns of the summary (the first of each group a test has).
COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("lost", ("lost", "good_lost")),
    ("dup", ("duplicates", "duplicate_runs", "dead_lettered_twice")),
    ("stuck", ("stuck_pending", "left_pending")),
]
#: Headline figures, in this order, for the last column.
HEADLINES = (
    "resume_s", "recovery_s", "takeover_s", "max_gap_s", "max_failed_delay_s",
    "redis_bytes_per_delayed_task", "rss_growth_kib", "bad_that_ran", "not_dead_lettered",
    "death_lines", "executions", "executions_started", "decode_crashes",
)  # fmt: skip


def _count(value: Any) -> str:
    if isinstance(value, dict):  # {kind: n}: how many in all
        return str(sum(v for v in value.values() if isinstance(v, int)))
    return _show(value)


def _brief(value: Any) -> str:
    """Like _show, but a dict in a few characters: its total and how many keys."""
    if isinstance(value, dict):
        if value and all(isinstance(v, int) for v in value.values()):
            return f"{sum(value.values())} in {len(value)} kinds"
        return f"{len(value)} kinds"
    return _show(value)


def summary(entries: list[dict[str, Any]]) -> str:
    """One row per test: outcome, lost, duplicates, stuck, and its headline figures."""
    rows = [["test", "result", "s", *(name for name, _ in COLUMNS), "headline figures"]]
    for entry in entries:
        figures = entry.get("figures") or {}
        row = [
            str(entry.get("test", "?")).removeprefix("tests/faults/").replace("::test_", "::"),
            str(entry.get("outcome", "?")),
            _number(float(entry.get("duration_s", 0))),
        ]
        for _, names in COLUMNS:
            found = next((figures[n] for n in names if n in figures), None)
            row.append("-" if found is None else _count(found))
        heads = [f"{n}={_brief(figures[n])}" for n in HEADLINES if n in figures][:2]
        row.append("; ".join(heads)[:70])
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in rows
    )


def table(entries: list[dict[str, Any]], width: int = 100) -> str:
    """The summary, then one block per test with every figure, wrapped."""
    if not entries:
        return "no fault-test figures recorded"
    out = [summary(entries), ""]
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
