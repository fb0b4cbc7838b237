"""django_taskq side by side with its peers, in one session: ``python -m benchmarks.peers``.

    python -m benchmarks.peers [--tasks N] [--latency M] [--rounds R]
        [--systems taskq,celery,huey,dramatiq,rq] [--write-docs] [--json FILE]

It starts one private ``redis-server`` (``django_taskq.testing.RedisServer``,
a free port, never 6379) and, for each round, measures every row once --
each system with its defaults and with its documented tuning -- by
starting ``python -m benchmarks.peers.measure`` in the interpreter that
has the system: this one for django_taskq, ``.venv-peers`` for the others
(``--peers-python``; scripts/bench-peers builds it from requirements.txt).
The rows run round-robin, each round starting one row further, so no
system always runs first or last; the database is flushed between rows.
A figure is the median over the rounds.

The table goes to stdout; ``--write-docs`` also puts it, with the versions,
the machine and the method, into docs/benchmarks.md between the markers
``MARKER_START`` and ``MARKER_END`` (a rerun replaces it). A row that fails
is reported as failed, with its error, and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import machine
from benchmarks.peers.measure import ROOT, SYSTEMS, VARIANTS

MARKER_START = "<!-- bench-peers: start (make bench-peers rewrites this part) -->"
MARKER_END = "<!-- bench-peers: end -->"
DOCS = ROOT / "docs" / "benchmarks.md"
NAMES = {
    "taskq": "django_taskq",
    "celery": "Celery",
    "huey": "Huey",
    "dramatiq": "Dramatiq",
    "rq": "RQ",
}
#: The distribution whose version names a system in the table.
MAIN_DIST = {
    "taskq": "django-taskq-streams",
    "celery": "celery",
    "huey": "huey",
    "dramatiq": "dramatiq",
    "rq": "rq",
}
FIGURES = (
    "enqueue_one_per_s",
    "enqueue_bulk_per_s",
    "drain_from_start_per_s",
    "drain_steady_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "startup_s",
    "rss_kib",
    "pss_kib",
)


def log(message: str) -> None:
    print(f"bench-peers: {message}", file=sys.stderr, flush=True)


def measure_row(
    python: str, system: str, variant: str, url: str, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """One row, measured in a subprocess of ``python``; its report, or {"error": ...}."""
    cmd = [
        python, "-m", "benchmarks.peers.measure", system, variant, "--redis-url", url,
        "--tasks", str(args.tasks), "--latency", str(args.latency), "--workdir", str(workdir),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQ_", "DJANGO_"))}
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.row_timeout
    )
    took = time.monotonic() - started
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        log(f"{system} {variant} failed in {took:.0f}s: {tail[0]}")
        sys.stderr.write(proc.stderr[-3000:])
        return {"system": system, "variant": variant, "error": tail[0]}
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"{system} {variant}: {took:.0f}s")
    return report


def rows_to_run(systems: Sequence[str]) -> list[tuple[str, str]]:
    return [(s, v) for s in systems for v in VARIANTS]


def rotated(rows: list[tuple[str, str]], index: int) -> list[tuple[str, str]]:
    """The rows of round ``index``: the same cycle, starting ``index`` rows further."""
    shift = index % len(rows) if rows else 0
    return rows[shift:] + rows[:shift]


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row's report: the figures' medians over the rounds that succeeded."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return {**runs[0], "rounds": 0}
    row = {k: v for k, v in good[0].items() if k != "figures"}
    figures = {}
    for key in FIGURES:
        values = [r["figures"][key] for r in good if r["figures"].get(key) is not None]
        figures[key] = statistics.median(values) if values else None
    row["figures"] = figures
    row["rounds"] = len(good)
    row["failed_rounds"] = len(runs) - len(good)
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every row, every round, against one private Redis; the report."""
    from django_taskq.testing import RedisServer

    pythons = {"taskq": sys.executable}
    systems = []
    for system in args.systems:
        if system != "taskq":
            if not Path(args.peers_python).exists():
                log(f"{system}: skipped, no {args.peers_python} (make bench-peers builds it)")
                continue
            pythons[system] = args.peers_python
        systems.append(system)
    rows = rows_to_run(systems)
    info = machine()
    server = RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="taskq-peers-"))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {row: [] for row in rows}
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        info["redis"] = str(client.info("server").get("redis_version", "?"))
        client.close()
        for index in range(args.rounds):
            log(f"round {index + 1} of {args.rounds}")
            for system, variant in rotated(rows, index):
                report = measure_row(pythons[system], system, variant, server.url, args, workdir)
                runs[(system, variant)].append(report)
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "tasks": args.tasks,
        "latency_calls": args.latency,
        "rounds": args.rounds,
        "machine": info,
        "rows": [median_row(runs[row]) for row in rows],
        "runs": {f"{s} {v}": r for (s, v), r in runs.items()},
    }


# -- the table -------------------------------------------------------------------
def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def table(report: dict[str, Any]) -> str:
    """The side-by-side table in Markdown."""
    lines = [
        "| System | Set-up (one execution slot) | `delay()` calls/s | bulk enqueue tasks/s "
        "| drain from start tasks/s | drain steady tasks/s | round trip p50 / p99 ms "
        "| start-up to first result s | worker RSS / PSS MB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in report["rows"]:
        name = f"{NAMES[row['system']]} ({row['variant']})"
        if row.get("rounds", 0) == 0:
            lines.append(f"| {name} | failed: {row.get('error', '?')} |" + " |" * 7)
            continue
        f = row["figures"]
        bulk = rate(f["enqueue_bulk_per_s"])
        bulk += f" `{row['bulk_api']}`" if row["bulk_api"] else " (no bulk API)"
        latency = f"{f['latency_p50_ms']:.2f} / {f['latency_p99_ms']:.2f}"
        memory = f"{f['rss_kib'] / 1024:.0f} / {f['pss_kib'] / 1024:.0f}"
        failed = f" ({row['failed_rounds']} round(s) failed)" if row.get("failed_rounds") else ""
        lines.append(
            f"| {name} | {row['setup']}{failed} | {rate(f['enqueue_one_per_s'])} | {bulk} "
            f"| {rate(f['drain_from_start_per_s'])} | {rate(f['drain_steady_per_s'])} "
            f"| {latency} | {f['startup_s']:.2f} | {memory} |"
        )
    return "\n".join(lines)


def versions_line(report: dict[str, Any]) -> str:
    """``django_taskq 0.2.0 (Django 5.2.19), Celery 5.7.0 (kombu 5.7.0), ...; redis-py ...``."""
    seen: dict[str, str] = {}
    clients: set[str] = set()
    for row in report["rows"]:
        versions = row.get("versions")
        if not versions or row["system"] in seen:
            continue
        extra = [f"{k} {v}" for k, v in versions.items() if k not in ("redis", "hiredis")]
        main = MAIN_DIST[row["system"]]
        others = [e for e in extra if not e.startswith(f"{main} ")]
        text = f"{NAMES[row['system']]} {versions.get(main, '?')}"
        seen[row["system"]] = text + (f" ({', '.join(others)})" if others else "")
        clients.add(f"redis-py {versions.get('redis')} with hiredis {versions.get('hiredis')}")
    return "; ".join(seen.values()) + "; " + ", ".join(sorted(clients))


def widest_spread(report: dict[str, Any]) -> str:
    """The figure that varied most between rounds, as a sentence (or "" with one round)."""
    widest: tuple[float, str] = (1.0, "")
    for name, runs in report.get("runs", {}).items():
        good = [r["figures"] for r in runs if "figures" in r]
        if len(good) < 2:
            continue
        for key in FIGURES:
            if key == "latency_p99_ms":  # a tail: noisy by nature, not the spread to report
                continue
            values = [f[key] for f in good if f.get(key)]
            if len(values) >= 2 and min(values) > 0 and max(values) / min(values) > widest[0]:
                low, high = min(values), max(values)
                widest = (high / low, f"{name}: {key} from {low:,.2f} to {high:,.2f}")
    if not widest[1]:
        return ""
    return (
        f"- Between rounds a figure varied by up to {widest[0]:.1f}x ({widest[1]}); "
        "every round's figures are in the JSON (`--json FILE`)."
    )


def section(report: dict[str, Any]) -> str:
    """What goes between the markers: how it was run, on what, and the table."""
    m = report["machine"]
    pythons = sorted({row.get("python", "?") for row in report["rows"]})
    return "\n".join(
        [
            MARKER_START,
            "",
            f"N = {report['tasks']:,} `add(i, i)` per figure, {report['latency_calls']} round "
            f"trips; medians of {report['rounds']} round(s), rows interleaved round-robin in "
            "one session against one private `redis-server`.",
            "",
            f"- Versions: {versions_line(report)}.",
            f"- Machine: {m['nproc']} CPU ({m['cpu']}), {m['mem_gib']} GiB, Python "
            f"{', '.join(pythons)}, Redis {m.get('redis', '?')}; load average "
            f"{m['loadavg_before'][0]:.2f} before, {m['loadavg_after'][0]:.2f} after.",
            *([line] if (line := widest_spread(report)) else []),
            *([f"- {report['note']}"] if report.get("note") else []),
            "",
            table(report),
            "",
            MARKER_END,
        ]
    )


def write_docs(report: dict[str, Any], path: Path) -> None:
    """Replace the part between the markers of ``path`` with this report's section."""
    text = path.read_text()
    start, end = text.find(MARKER_START), text.find(MARKER_END)
    if start < 0 or end < start:
        raise SystemExit(
            f"{path} has no {MARKER_START!r} ... {MARKER_END!r} pair: add both where the "
            "table belongs"
        )
    path.write_text(text[:start] + section(report) + text[end + len(MARKER_END) :])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description="django_taskq, Celery, Huey, Dramatiq and RQ on the same task and Redis.",
    )
    parser.add_argument("--tasks", type=int, default=20000, help="N per figure (20000).")
    parser.add_argument("--latency", type=int, default=500, help="Round trips timed (500).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds; medians reported (3).")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"Comma-separated, of {', '.join(SYSTEMS)} (all).",
    )
    parser.add_argument(
        "--peers-python",
        default=str(ROOT / ".venv-peers" / "bin" / "python"),
        help="Python of the virtualenv with the peers (.venv-peers/bin/python).",
    )
    parser.add_argument(
        "--row-timeout", type=float, default=1800, help="Seconds one row may take (1800)."
    )
    parser.add_argument(
        "--write-docs",
        nargs="?",
        const=str(DOCS),
        default=None,
        metavar="FILE",
        help="Write the table between the markers of FILE (docs/benchmarks.md).",
    )
    parser.add_argument("--json", default=None, metavar="FILE", help="Write the report here.")
    parser.add_argument(
        "--note", default="", help="A sentence for the table's notes (e.g. the machine was shared)."
    )
    parser.add_argument(
        "--from-json",
        default=None,
        metavar="FILE",
        help="Measure nothing: print (and with --write-docs write) the table of a saved report.",
    )
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown or not args.systems:
        parser.error(f"--systems takes {', '.join(SYSTEMS)}, not {', '.join(sorted(unknown))}")
    if args.tasks < 2 or args.latency < 1 or args.rounds < 1:
        parser.error("--tasks must be at least 2, --latency and --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = json.loads(Path(args.from_json).read_text()) if args.from_json else run(args)
    if args.note:
        report["note"] = args.note
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    if args.write_docs:
        write_docs(report, Path(args.write_docs))
        log(f"wrote the table into {args.write_docs}")
    print(section(report))
    return 1 if any(row.get("rounds", 0) == 0 for row in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
