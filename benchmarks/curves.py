"""Cost as work grows: ``python -m benchmarks.curves [--quick] [--parts ...] [--json [FILE]]``.

How Redis memory, the drain, ETA precision and worker memory behave when
the work grows from 10^4 to 10^6 tasks, and what 100 queues cost one
worker. Like ``benchmarks.bench`` it starts a private ``redis-server``
(never the system Redis) and real ``taskq_worker -P solo`` subprocesses
with ``DJANGO_SETTINGS_MODULE=benchmarks.bench_app.settings``; it reuses
that module's worker, /proc and output helpers, and ``benchmarks.bench_scale``
for the queue-count cells. Four parts, each run alone, one scale at a time:

- ``memory``: Redis bytes per queued task, per delayed (countdown) task and
  per stored result, at each scale N. From an empty Redis, N ``add(i, i)``
  are sent with ``delay_many`` (or ``apply_many(countdown=1 day)``) 1,000
  a call; for results they are then drained by a solo worker (task events,
  counters and history off), which is stopped. ``INFO memory``
  ``used_memory`` is read before and after; then the once keys, the
  result (or PENDING) records, the events stream and the message store
  (stream or delayed set) are deleted in turn, and each deletion's drop
  in ``used_memory`` is that part's cost.
- ``drain``: one solo worker drains N queued tasks, results stored, with
  task events / counters / history off, and then all on (the bench app's
  default). The rate from spawn, between the first and the last result,
  over the middle 80 % (steady), and per tenth; the worker's RSS and PSS
  at every tenth done (the ``memory`` of the worker as work grows).
- ``eta``: N ``stamp()`` tasks, each with its own ETA drawn uniformly over
  a window that opens after all are sent, with a solo worker running the
  whole time. ``stamp()`` returns ``time.time()`` when it runs; lateness =
  that - its ETA. How many ran early (must be 0), p50/p90/p99/p99.9/max.
- ``queues``: N tasks spread round-robin over 1, 10 and 100 queues, one
  solo worker listening on all of them (``bench_scale``'s cell: rate and
  CPU per task of the worker and Redis).

``--quick`` runs N = 10^4 only (a smoke run; the figures are not the
curve). The report is printed as Markdown tables (docs/benchmarks.md,
"Cost as work grows"); ``--json`` prints JSON instead, ``--json FILE``
writes it there too.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench import (
    BULK_CHUNK,
    PRIORITY,
    SETTINGS_MODULE,
    WorkerProcess,
    _hiredis_version,
    _migrate,
    chunks,
    cpu_seconds,
    log,
    machine,
    percentile,
    show,
    worker_env,
)
from benchmarks.bench_scale import (
    HISTORY_CONFIGS,
    ScalingBench,
    Topology,
    broker_url,
    queued,
    verify_results,
)

QUEUE = "default"
PARTS = ("memory", "drain", "eta", "queues")
KINDS = ("queued", "delayed", "result")
SCALES = (10_000, 100_000, 1_000_000)
#: Countdown of the delayed tasks whose memory is measured: none falls due meanwhile.
DELAYED_COUNTDOWN = 86_400
#: Parts of a worker's drain the rate and the memory are sampled at.
TENTHS = 10


def flush(client: Any) -> None:
    client.flushall()


def used_memory(client: Any) -> int:
    """``used_memory`` of INFO memory, read on a fresh connection.

    The pool is dropped first: a connection that has just sent a large
    pipeline keeps a large query buffer on the server until it idles, and
    that buffer is not the data's.
    """
    client.connection_pool.disconnect()
    return int(client.info("memory")["used_memory"])


def delete_matching(client: Any, pattern: str) -> int:
    """Delete every key matching ``pattern`` (SCAN + DEL, 1,000 at a time); how many."""
    count = 0
    batch: list[Any] = []
    for key in client.scan_iter(match=pattern, count=BULK_CHUNK):
        batch.append(key)
        if len(batch) >= BULK_CHUNK:
            count += client.delete(*batch)
            batch = []
    if batch:
        count += client.delete(*batch)
    return count


def crossing(polls: Sequence[tuple[float, int]], done: float) -> float:
    """The time (linear between polls) at which ``done`` tasks were done."""
    for (t0, d0), (t1, d1) in itertools.pairwise(polls):
        if d0 <= done <= d1:
            return t0 if d1 == d0 else t0 + (t1 - t0) * (done - d0) / (d1 - d0)
    return polls[-1][0]


class Curves:
    """The parts, against one private Redis; Django is set up and points at it."""

    def __init__(self, url: str, workdir: Path) -> None:
        from benchmarks.bench_app.tasks import add, stamp
        from django_taskq.broker import keys
        from django_taskq.broker.connection import get_broker

        self.url = url
        self.workdir = workdir
        self.add = add
        self.stamp = stamp
        self.keys = keys
        self.client: Any = get_broker()

    # -- workers ---------------------------------------------------------------
    def worker(self, config: str, name: str) -> WorkerProcess:
        """A solo worker on QUEUE with the HISTORY_CONFIGS setting ``config``."""
        env = {**worker_env(self.url, self.workdir), **HISTORY_CONFIGS[config]}
        if config == "history":
            from django_taskq.history.models import TaskRecord

            TaskRecord.objects.all().delete()  # the recorder starts on an empty table
        args = ["-P", "solo", "-Q", QUEUE, "-n", f"curves-{name}@bench"]
        return WorkerProcess(args, env, self.workdir / f"worker-{name}.log").start()

    def enqueue(self, n: int, countdown: float | None = None) -> dict[str, int]:
        """N ``add(i, i)``, 1,000 a ``delay_many``/``apply_many`` call; task id -> 2i."""
        expected: dict[str, int] = {}
        for part in chunks(0, n, BULK_CHUNK):
            if countdown is None:
                results = self.add.delay_many((i, i) for i in part)
            else:
                calls = (((i, i), None) for i in part)
                results = self.add.apply_many(calls, countdown=countdown)
            for i, result in zip(part, results, strict=True):
                expected[result.id] = i + i
        return expected

    def drain(self, n: int, config: str, expected: dict[str, int]) -> dict[str, Any]:
        """Start a worker on N queued tasks; poll until all are done; check every result.

        Every 50 ms the poll reads how many are done (N - waiting - pending);
        at each tenth done it reads the worker's RSS and PSS.
        """
        log(f"drain {n} tasks, one solo worker, settings {config}")
        worker = self.worker(config, f"drain-{config}-{n}")
        polls: list[tuple[float, int]] = [(worker.spawned, 0)]
        samples: list[dict[str, Any]] = []
        marks = [math.ceil(n * k / TENTHS) for k in range(1, TENTHS + 1)]
        deadline = time.monotonic() + 120 + n / 500
        try:
            while True:
                worker.check_alive()
                waiting, pending = queued(self.client, [QUEUE])
                now, done = time.time(), n - waiting - pending
                polls.append((now, done))
                if marks and done >= marks[0]:
                    while marks and done >= marks[0]:
                        marks.pop(0)
                    rss = worker.rss_kib()
                    samples.append(
                        {
                            "done": done,
                            "at": now,
                            "rss_kib": rss["worker"],
                            "rss_children_kib": sum(rss.values()) - rss["worker"],
                            "pss_kib": worker.pss_kib(),
                        }
                    )
                if waiting == 0 and pending == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"drain did not finish: {waiting} queued, {pending} pending")
                time.sleep(0.05)
            worker_cpu = cpu_seconds(worker.pid)
        finally:
            worker.stop()
        first, last = verify_results(self.client, expected)
        t10, t90 = crossing(polls, 0.1 * n), crossing(polls, 0.9 * n)
        tenths = []
        previous = {"done": 0, "at": first}
        for sample in samples:
            span = sample["at"] - previous["at"]
            tenths.append((sample["done"] - previous["done"]) / span if span > 0 else 0.0)
            previous = sample
        return {
            "config": config,
            "tasks": n,
            "from_spawn_per_s": n / (last - worker.spawned),
            "first_to_last_per_s": (n - 1) / (last - first) if last > first else 0.0,
            "steady_per_s": 0.8 * n / (t90 - t10) if t90 > t10 else 0.0,
            "startup_s": first - worker.spawned,
            "tenth_rates_per_s": tenths,
            "samples": samples,
            "worker_cpu_us_per_task": worker_cpu / n * 1e6,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }

    # -- memory ----------------------------------------------------------------
    def memory(self, kind: str, n: int) -> dict[str, Any]:
        """Redis bytes per task of ``kind`` at N, in all and by part."""
        log(f"memory: {n} {kind} tasks")
        flush(self.client)
        # Scripts loaded (a worker loads its own), connection made: not in the baseline.
        warm = self.enqueue(1)
        if kind == "result":
            self.drain(1, "off", warm)
        flush(self.client)
        base = used_memory(self.client)
        started = time.perf_counter()
        expected = self.enqueue(n, DELAYED_COUNTDOWN if kind == "delayed" else None)
        enqueue_s = time.perf_counter() - started
        drained = None
        if kind == "result":
            drained = self.drain(n, "off", expected)
        total = used_memory(self.client) - base
        parts: dict[str, int] = {}
        counts: dict[str, int] = {}
        store = self.keys.delayed(QUEUE) if kind == "delayed" else self.keys.stream(QUEUE, PRIORITY)
        steps: list[tuple[str, Callable[[], int]]] = [
            ("once", lambda: delete_matching(self.client, "*:once:*")),
            ("records", lambda: delete_matching(self.client, "*:result")),
            ("events", lambda: int(self.client.delete(self.keys.events(QUEUE)))),
            ("messages", lambda: int(self.client.delete(store))),
        ]
        now = used_memory(self.client)
        for name, step in steps:
            counts[name] = step()
            after = used_memory(self.client)
            parts[name] = now - after
            now = after
        rest = now - base
        return {
            "kind": kind,
            "tasks": n,
            "enqueue_per_s": n / enqueue_s,
            "total_bytes": total,
            "bytes_per_task": (total - parts["once"]) / n,
            "with_once_per_task": total / n,
            "parts_bytes": parts,
            "deleted_keys": counts,
            "record_bytes": parts["records"] / max(counts["records"], 1),
            "once_key_bytes": parts["once"] / counts["once"] if counts["once"] else 0.0,
            "message_per_task": parts["messages"] / n,
            "events_per_task": parts["events"] / n,
            "rest_bytes": rest,
            "drain": drained,
        }

    # -- ETA -------------------------------------------------------------------
    def eta(self, n: int, window: float, lead: float, config: str) -> dict[str, Any]:
        """N stamp() tasks due uniformly over ``window`` s, ``lead`` s after the first send."""
        from django_taskq.broker.publish import publish_many
        from django_taskq.messages import loads

        log(f"ETA: {n} stamp() tasks due over {window:g}s from {lead:g}s on, settings {config}")
        flush(self.client)
        worker = self.worker(config, f"eta-{n}")
        opens = time.time() + lead
        rng = random.Random(11)
        etas: dict[str, float] = {}
        build = self.stamp.build_envelope
        try:
            for part in chunks(0, n, BULK_CHUNK):
                envelopes = [build((), eta=opens + rng.uniform(0, window)) for _ in part]
                publish_many(envelopes)
                for envelope in envelopes:
                    assert envelope.eta is not None
                    etas[envelope.id] = envelope.eta
            sent = time.time()
            log(f"ETA: sent {n} in {sent - opens + lead:.1f}s, {opens - sent:.1f}s before the 1st")
            deadline = time.monotonic() + (opens - sent) + window + 120 + n / 500
            while True:
                worker.check_alive()
                waiting, pending = queued(self.client, [QUEUE])
                delayed = int(self.client.zcard(self.keys.delayed(QUEUE)))
                if waiting == 0 and pending == 0 and delayed == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ETA tasks not done: {delayed} delayed, {waiting} queued")
                time.sleep(0.2)
        finally:
            worker.stop()
        late: list[float] = []
        done_late: list[float] = []
        ids = list(etas)
        for part in chunks(0, n, BULK_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for i in part:
                pipe.get(self.keys.result(ids[i]))
            for i, raw in zip(part, pipe.execute(), strict=True):
                record = loads(raw) if raw is not None else {}
                if record.get("status") != "SUCCESS":
                    raise RuntimeError(f"stamp() {ids[i]} is {record.get('status')}, not SUCCESS")
                late.append(float(record["result"]) - etas[ids[i]])
                done_late.append(float(record["date_done"]) - etas[ids[i]])
        late.sort()
        done_late.sort()
        ms = {f"p{p}_ms": percentile(late, p) * 1000 for p in (50, 90, 99, 99.9)}
        return {
            "tasks": n,
            "window_s": window,
            "lead_s": lead,
            "config": config,
            "sent_before_first_due_s": opens - sent,
            "early": sum(1 for x in late if x < 0),
            "earliest_ms": late[0] * 1000,
            **ms,
            "max_ms": late[-1] * 1000,
            "done_p50_ms": percentile(done_late, 50) * 1000,
            "done_p99_ms": percentile(done_late, 99) * 1000,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }


# -- the queue-count part --------------------------------------------------------
def queue_cells(n: int, counts: Sequence[int], workdir: Path) -> list[dict[str, Any]]:
    """``bench_scale`` cells of one solo worker over each queue count, on a Redis of their own."""
    topology = Topology("single").start()
    try:
        with broker_url(topology.url):
            bench = ScalingBench(topology, workdir, n, None)
            bench.config, bench.overrides = "off", HISTORY_CONFIGS["off"]
            cells = [bench.cell(count, 1) for count in counts]
            bench.client.close()
    finally:
        topology.close()
    return cells


# -- output ----------------------------------------------------------------------
def _md(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return out


def once_column(row: dict[str, Any]) -> str:
    """Bytes a once key holds, when all N were still there (else expiry freed some already).

    With some expired, the drop also holds what Redis's hash tables gave
    back when they shrank (its cron resizes them while the deletion runs),
    so no per-key figure is given.
    """
    alive = row["deleted_keys"]["once"]
    if alive == row["tasks"]:
        return f"{row['once_key_bytes']:,.0f}"
    return f"- ({alive:,} of {row['tasks']:,} alive)"


def table(report: dict[str, Any]) -> str:
    """The report as Markdown tables (what docs/benchmarks.md shows)."""
    m = report["machine"]
    lines = [
        f"django_taskq curves: {m['nproc']} CPU ({m['cpu']}), Python {m['python']}, "
        f"{m['redis']}, hiredis {m.get('hiredis') or 'no'}; load "
        f"{m['loadavg_before'][0]:.2f} before, {m['loadavg_after'][0]:.2f} after",
    ]
    if report.get("memory"):
        lines += ["", "Redis memory (INFO used_memory), bytes a task:", ""]
        rows = [
            [
                "kind",
                "N",
                "per task",
                "message",
                "record",
                "sent event",
                "once key (each, while it lives)",
                "other (KiB)",
                "enqueue tasks/s",
            ]
        ]
        for r in report["memory"]:
            rows.append(
                [
                    r["kind"],
                    f"{r['tasks']:,}",
                    f"**{r['bytes_per_task']:,.0f}**",
                    f"{r['message_per_task']:,.0f}",
                    f"{r['record_bytes']:,.0f}",
                    f"{r['events_per_task']:,.0f}",
                    once_column(r),
                    f"{r['rest_bytes'] / 1024:,.0f}",
                    f"{r['enqueue_per_s']:,.0f}",
                ]
            )
        lines += _md(rows)
    if report.get("drain"):
        lines += ["", "Drain, one solo worker, results stored:", ""]
        rows = [
            [
                "settings",
                "N",
                "from spawn",
                "first to last result",
                "steady (10-90 %)",
                "first tenth",
                "last tenth",
                "worker CPU µs/task",
                "load",
            ]
        ]
        for r in report["drain"]:
            tenths = r["tenth_rates_per_s"] or [0.0]
            rows.append(
                [
                    r["config"],
                    f"{r['tasks']:,}",
                    f"{r['from_spawn_per_s']:,.0f}",
                    f"{r['first_to_last_per_s']:,.0f}",
                    f"**{r['steady_per_s']:,.0f}**",
                    f"{tenths[0]:,.0f}",
                    f"{tenths[-1]:,.0f}",
                    f"{r['worker_cpu_us_per_task']:.1f}",
                    f"{r['loadavg_1m']:.2f}",
                ]
            )
        lines += _md(rows)
        lines += ["", "Worker memory during the drain (MiB; RSS of the worker process and of "
                  "its children (the history recorder), PSS of them all):", ""]  # fmt: skip
        rows = [["settings", "done", "RSS worker", "RSS children", "PSS"]]
        for r in report["drain"]:
            for s in r["samples"]:
                rows.append(
                    [
                        r["config"],
                        f"{s['done']:,}",
                        f"{s['rss_kib'] / 1024:.1f}",
                        f"{s['rss_children_kib'] / 1024:.1f}",
                        f"{s['pss_kib'] / 1024:.1f}",
                    ]
                )
        lines += _md(rows)
    if report.get("eta"):
        lines += ["", "ETA lateness (ran - ETA), ms:", ""]
        rows = [["N", "window", "all sent", "early", "p50", "p90", "p99", "p99.9", "max", "load"]]
        for r in report["eta"]:
            rows.append(
                [
                    f"{r['tasks']:,}",
                    f"{r['window_s']:.4g} s",
                    f"{r['sent_before_first_due_s']:.0f} s before the 1st ETA",
                    f"**{r['early']}**",
                    f"{r['p50_ms']:.1f}",
                    f"{r['p90_ms']:.1f}",
                    f"{r['p99_ms']:.1f}",
                    f"{r['p99.9_ms']:.1f}",
                    f"{r['max_ms']:.1f}",
                    f"{r['loadavg_1m']:.2f}",
                ]
            )
        lines += _md(rows)
    if report.get("queues"):
        lines += ["", "One solo worker on N tasks spread over Q queues:", ""]
        rows = [["queues", "N", "tasks/s", "worker µs/task", "Redis µs/task", "load"]]
        for c in report["queues"]:
            rows.append(
                [
                    str(c["queues"]),
                    f"{c['tasks']:,}",
                    f"**{c['tasks_per_s']:,.0f}**",
                    f"{c['worker_us_per_task']:.1f}",
                    f"{c['redis_us_per_task']:.1f}",
                    f"{c['loadavg_1m']:.2f}",
                ]
            )
        lines += _md(rows)
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    values = [int(v.replace("_", "")) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.curves",
        description="Redis memory, drain rate, ETA lateness and worker memory from 10^4 "
        "to 10^6 tasks, and the cost of many queues, against a private Redis.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="N = 10^4 everywhere (a smoke run; not the curve)."
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"Comma-separated, run in this order: {', '.join(PARTS)} (default all).",
    )
    parser.add_argument(
        "--scales", type=_int_list, default=None, help="N of the memory part (10^4,10^5,10^6)."
    )
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="Memory kinds: queued, delayed, result."
    )
    parser.add_argument("--drain-tasks", type=int, default=None, help="N (default 10^6).")
    parser.add_argument(
        "--drain-configs",
        default="off,history",
        help="Worker settings of the drains: off (events, counters, history off), "
        "events, history (all on) (default off,history).",
    )
    parser.add_argument("--eta-tasks", type=int, default=None, help="N (default 10^6).")
    parser.add_argument(
        "--eta-window",
        type=float,
        default=None,
        help="Seconds the ETAs spread over (default N / 8,333: 120 s for 10^6).",
    )
    parser.add_argument(
        "--eta-lead",
        type=float,
        default=None,
        help="Seconds from the first send to the first ETA; all must be sent by then "
        "(default 5 + N / 4,000: 255 s for 10^6).",
    )
    parser.add_argument(
        "--eta-config", default="off", help="Worker settings of the ETA part (default off)."
    )
    parser.add_argument("--queue-tasks", type=int, default=None, help="N (default 10^5).")
    parser.add_argument(
        "--queue-counts", type=_int_list, default=[1, 10, 100], help="Default 1,10,100."
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="Print JSON instead of the tables; with FILE, write it there and print the tables.",
    )
    args = parser.parse_args(argv)
    small = 10_000
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    args.drain_configs = [c.strip() for c in args.drain_configs.split(",") if c.strip()]
    args.scales = args.scales or ([small] if args.quick else list(SCALES))
    args.drain_tasks = args.drain_tasks or (small if args.quick else SCALES[-1])
    args.eta_tasks = args.eta_tasks or (small if args.quick else SCALES[-1])
    args.queue_tasks = args.queue_tasks or (small if args.quick else 100_000)
    if args.eta_window is None:
        args.eta_window = max(5.0, args.eta_tasks / 8_333)
    if args.eta_lead is None:
        args.eta_lead = 5 + args.eta_tasks / 4_000
    for name, given, allowed in (
        ("--parts", args.parts, PARTS),
        ("--kinds", args.kinds, KINDS),
        ("--drain-configs", args.drain_configs, tuple(HISTORY_CONFIGS)),
        ("--eta-config", [args.eta_config], tuple(HISTORY_CONFIGS)),
    ):
        unknown = set(given) - set(allowed)
        if unknown or not given:
            parser.error(f"{name} takes {', '.join(allowed)}, not {', '.join(sorted(unknown))}")
    if min(args.drain_tasks, args.eta_tasks, args.queue_tasks) < 2:
        parser.error("--drain-tasks, --eta-tasks and --queue-tasks must be at least 2")
    if args.eta_window <= 0 or args.eta_lead <= 0:
        parser.error("--eta-window and --eta-lead must be positive")
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every part asked for, one after the other; the report."""
    from django_taskq.testing import RedisServer

    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["TASKQ_BENCH_DIR"] = str(workdir)
    os.environ.setdefault("TASKQ_BROKER_URL", "redis://127.0.0.1:1/0")
    import django

    django.setup()
    _migrate()
    info = machine()
    info["hiredis"] = _hiredis_version()
    info["redis"] = subprocess.run(
        [shutil.which("redis-server") or "redis-server", "--version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    report: dict[str, Any] = {"command": sys.argv, "machine": info}
    server = RedisServer().start()
    try:
        with broker_url(server.url):
            curves = Curves(server.url, workdir)
            for part in args.parts:
                if part == "memory":
                    report["memory"] = [
                        curves.memory(kind, n) for n in args.scales for kind in args.kinds
                    ]
                elif part == "drain":
                    report["drain"] = []
                    for config in args.drain_configs:
                        flush(curves.client)
                        expected = curves.enqueue(args.drain_tasks)
                        report["drain"].append(curves.drain(args.drain_tasks, config, expected))
                        del expected
                elif part == "eta":
                    report["eta"] = [
                        curves.eta(args.eta_tasks, args.eta_window, args.eta_lead, args.eta_config)
                    ]
            curves.client.close()
    finally:
        server.close()
    if "queues" in args.parts:
        report["queues"] = queue_cells(args.queue_tasks, args.queue_counts, workdir)
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the curves; returns the exit code."""
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="taskq-curves-"))
    try:
        report = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    show(report, args.json, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
