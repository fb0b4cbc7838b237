"""Concurrency: what a second prefork child and a pool of threads add to one worker.

Two questions of issue 11, answered with the drain of ``benchmarks.bench``
(N tasks queued in bulk, then a worker started; the rate is taken from the
first to the last ``date_done`` the worker stamped, so start-up is excluded,
and every result is checked):

- **CPU-trivial tasks, prefork ``-c 1`` against ``-c 2``** (``add``): on a
  2-core machine the second child has the second core, which the parent,
  Redis and the history recorder also use. Runs alternate between the two,
  ``--repeat`` times each; the table gives each run and the medians' ratio.
- **I/O-bound tasks on the threads pool** (``nap``: sleeps
  ``--nap-ms``, 10 ms by default, then returns): ``-P threads -c C`` for
  each C in ``--threads``. The ideal is C / nap tasks a second; the table
  gives the rate reached and its share of the ideal. N is sized so each
  drain lasts about ``--seconds`` at the ideal rate.

    python -m benchmarks.concurrency [--tasks 20000] [--repeat 3]
        [--threads 10,100] [--nap-ms 10] [--seconds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import Bench, log, machine, set_up, show


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.concurrency", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20000, help="add() tasks per prefork drain")
    parser.add_argument("--repeat", type=int, default=3, help="prefork drains per -c, alternating")
    parser.add_argument("--threads", default="10,100", help="threads pool sizes, comma-separated")
    parser.add_argument("--nap-ms", type=float, default=10.0, help="what one nap task sleeps")
    parser.add_argument("--seconds", type=float, default=3.0, help="ideal length of a nap drain")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE")
    args = parser.parse_args(argv)
    args.threads = [int(c) for c in args.threads.split(",") if c.strip()]
    if args.tasks < 2 or args.repeat < 1 or args.nap_ms <= 0 or not args.threads:
        parser.error("--tasks >= 2, --repeat >= 1, --nap-ms > 0 and some --threads are needed")
    return args


def _drain(bench: Bench, *worker_args: str) -> dict[str, Any]:
    """One drain of what is queued with a fresh worker; the worker is stopped after."""
    worker, figures = bench.drain(*worker_args)
    worker.stop()
    bench.workers.remove(worker)
    bench.client.flushdb()
    return figures


def prefork(bench: Bench, repeat: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"1": [], "2": []}
    for _ in range(repeat):
        for children in ("1", "2"):
            bench.enqueue_bulk()
            rates[children].append(_drain(bench, "-P", "prefork", "-c", children)["tasks_per_s"])
    medians = {c: statistics.median(r) for c, r in rates.items()}
    return {"runs": rates, "median": medians, "ratio": medians["2"] / medians["1"]}


def threads(bench: Bench, sizes: list[int], nap_ms: float, seconds: float) -> list[dict[str, Any]]:
    from benchmarks.bench_app.tasks import nap

    bench.add = nap  # enqueue_bulk sends nap(i, i); the result is still 2i
    rows = []
    for size in sizes:
        ideal = size * 1000 / nap_ms
        bench.tasks = max(int(ideal * seconds), 2)
        bench.enqueue_bulk()
        figures = _drain(bench, "-P", "threads", "-c", str(size))
        rows.append(
            {
                "threads": size,
                "tasks": bench.tasks,
                "ideal_per_s": ideal,
                "tasks_per_s": figures["tasks_per_s"],
                "share_of_ideal": figures["tasks_per_s"] / ideal,
                "worker_cpu_s": figures["worker_cpu_s"],
            }
        )
    return rows


def table(report: dict[str, Any]) -> str:
    pre = report["prefork"]
    lines = [
        f"machine: {report['machine'].get('cpu')}, {report['machine'].get('nproc')} CPUs; "
        f"load average after {report['machine'].get('loadavg_after')}",
        "",
        f"| add(), {report['tasks']:,} tasks | runs, tasks/s | median |",
        "| --- | --- | --- |",
    ]
    for children in ("1", "2"):
        runs = ", ".join(f"{r:,.0f}" for r in pre["runs"][children])
        lines.append(f"| prefork -c {children} | {runs} | {pre['median'][children]:,.0f} |")
    lines += [
        f"| -c 2 / -c 1 | | **{pre['ratio']:.2f}x** |",
        "",
        f"| nap ({report['nap_ms']:g} ms), threads pool | tasks | ideal, tasks/s "
        "| reached, tasks/s | share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["threads"]:
        lines.append(
            f"| -P threads -c {row['threads']} | {row['tasks']:,} | {row['ideal_per_s']:,.0f} "
            f"| {row['tasks_per_s']:,.0f} | {row['share_of_ideal']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="taskq-bench-concurrency-"))
    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    bench: Bench | None = None
    try:
        os.environ["TASKQ_BENCH_NAP_MS"] = f"{args.nap_ms:g}"  # the workers inherit it
        set_up(server.url, workdir)
        bench = Bench(server, workdir, args.tasks, 1)
        info = machine()
        log("prefork -c 1 and -c 2, alternating")
        pre = prefork(bench, args.repeat)
        log("threads pool, I/O-bound tasks")
        rows = threads(bench, args.threads, args.nap_ms, args.seconds)
        info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        report = {
            "tasks": args.tasks,
            "repeat": args.repeat,
            "nap_ms": args.nap_ms,
            "machine": info,
            "prefork": pre,
            "threads": rows,
        }
    finally:
        if bench is not None:
            bench.close()
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    show(report, args.json, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
