"""Scaling benchmark: ``python -m benchmarks.bench --scaling``.

In one run it measures how the drain grows with worker processes, queues
and Redis masters. For each topology it starts its own servers (never the
system Redis):

- ``single``: one ``redis-server`` (``django_taskq.testing.RedisServer``);
- ``cluster1``, ``cluster3``: a Redis Cluster of 1 or 3 masters, no
  replicas, on free ports below 55535 (``redis-cli --cluster create`` for
  3; it refuses fewer, so 1 master is given every slot with
  ``CLUSTER ADDSLOTSRANGE``).

Then, for each number of queues (1 or 8, named ``q0``...) and of workers
(1, 2, 4), one *cell*: N ``add(i, i)`` are enqueued with ``publish_many``,
round-robin over the queues, while no worker runs; K ``taskq_worker -P
solo -Q q0,...`` subprocesses start; the benchmark polls ``XLEN`` +
``XPENDING`` of every queue until all are 0, then reads back every result
(SUCCESS, 2i). Per cell:

- **tasks/s**: (N - 1) / (last - first result ``date_done``), as the
  single-worker drain of ``benchmarks.bench`` (worker start-up excluded);
- **Redis CPU per task**: the change of ``used_cpu_user + used_cpu_sys``
  (INFO CPU) summed over every master, / N, in microseconds, for the drain
  and, separately, for the enqueue; and the busiest master's share (what
  saturates first on Cluster);
- **worker CPU per task**: user + system CPU of the K workers
  (/proc/<pid>/stat), / N.

The drain's CPU is taken over the same window as the rate: the benchmark
reads the masters' and the workers' CPU at every poll (every 50 ms) and
interpolates it at the first and the last ``date_done``, so worker
start-up, and Redis idling (cron, cluster bus) while the workers start,
stay outside.

With ``--history-cost`` each cell is run three times a round, interleaved,
with the workers' TASKQ_EVENTS / TASKQ_METRICS / TASKQ_HISTORY set to
``off`` (all 0), ``events`` (events and counters, no recorder) and
``history`` (all 1: the workers fork their recorder, which writes
TaskRecord rows into the benchmark's SQLite database while they drain);
each round starts with the next setting, so none is always first.
Besides each setting's medians it reports, per setting, the median over
the rounds of its rate and worker CPU against the ``off`` run of the same
round: paired, so a slow minute of a shared machine hits both sides.

CPU time is what a task costs wherever it runs, so it holds on a busy or
small machine (mostly: contention adds some); the rate does not.
``project()`` turns the CPU costs into the rate a machine with more cores
would reach (docs/benchmarks.md, "Scaling").
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from benchmarks.bench import (
    BULK_CHUNK,
    PRIORITY,
    SETTINGS_MODULE,
    WorkerProcess,
    _hiredis_version,
    chunks,
    cpu_seconds,
    log,
    machine,
    show,
    worker_env,
)
from django_taskq.testing import RedisServer
from django_taskq.testing_topologies import HOST, ClusterServers, cluster_port

if TYPE_CHECKING:
    import redis

TOPOLOGIES = ("single", "cluster1", "cluster3")
#: The workers' settings --history-cost compares, in the order each round runs them.
HISTORY_CONFIGS: dict[str, dict[str, str]] = {
    "off": {"TASKQ_EVENTS": "0", "TASKQ_METRICS": "0", "TASKQ_HISTORY": "0"},
    "events": {"TASKQ_EVENTS": "1", "TASKQ_METRICS": "1", "TASKQ_HISTORY": "0"},
    "history": {"TASKQ_EVENTS": "1", "TASKQ_METRICS": "1", "TASKQ_HISTORY": "1"},
}
#: Cores a projection is made for.
PROJECT_CORES = (2, 4, 8, 16, 32)


# -- servers -------------------------------------------------------------------
class BenchCluster(ClusterServers):
    """A Redis Cluster of masters only; one or two masters are set up by hand."""

    def __init__(self, masters: int) -> None:
        super().__init__(masters=masters, replicas=0)

    def start(self) -> BenchCluster:
        if self.masters >= 3:
            super().start()
            return self
        # redis-cli --cluster create wants 3 masters at least: do what it does.
        taken: set[int] = set()
        for _ in range(self.masters):
            port = cluster_port(taken)
            taken |= {port, port + 10000}
            args = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            self.nodes.append(RedisServer(port=port, extra_args=args).start())
        step = 16384 // self.masters
        for index, node in enumerate(self.nodes):
            last = 16383 if index == self.masters - 1 else (index + 1) * step - 1
            client = node.client()
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", index * step, last)  # type: ignore[no-untyped-call]
            if index:
                client.execute_command("CLUSTER", "MEET", HOST, self.nodes[0].port)  # type: ignore[no-untyped-call]
        self.wait_ready()
        return self


class Topology:
    """The servers of one topology: its URL and its masters."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.single: RedisServer | None = None
        self.cluster: BenchCluster | None = None
        #: One connection per master, kept: the CPU is read at every poll.
        self.clients: dict[int, redis.Redis] = {}

    def start(self) -> Topology:
        if self.name == "single":
            self.single = RedisServer().start()
        else:
            self.cluster = BenchCluster(int(self.name.removeprefix("cluster"))).start()
        self.clients = {node.port: node.client() for node in self.masters()}
        return self

    @property
    def url(self) -> str:
        return self.single.url if self.single else self.cluster.url  # type: ignore[union-attr]

    def masters(self) -> list[RedisServer]:
        return [self.single] if self.single else self.cluster.primaries()  # type: ignore[union-attr]

    def flush(self) -> None:
        for client in self.clients.values():
            client.flushall()

    def redis_cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) each master has used, by port."""
        out = {}
        for port, client in self.clients.items():
            info: dict[str, Any] = client.info("cpu")
            out[port] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return out

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self.single:
            self.single.close()
        if self.cluster:
            self.cluster.close()


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    return {port: after[port] - before.get(port, 0.0) for port in after}


# -- one cell --------------------------------------------------------------------
class ScalingBench:
    """The cells of one topology; Django is set up and its broker URL points at it."""

    def __init__(self, topology: Topology, workdir: Path, tasks: int, prefetch: int | None):
        from benchmarks.bench_app.tasks import add
        from django_taskq.broker.connection import get_broker

        self.topology = topology
        self.workdir = workdir
        self.tasks = tasks
        self.prefetch = prefetch
        self.add = add
        self.client: Any = get_broker()
        self.config = ""  # a HISTORY_CONFIGS name, or "" for the environment's settings
        self.overrides: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        return {**worker_env(self.topology.url, self.workdir), **self.overrides}

    def spawn(self, index: int, queues: list[str]) -> WorkerProcess:
        args = ["-P", "solo", "-Q", ",".join(queues), "-n", f"scale{index}@bench"]
        if self.prefetch:
            args += ["--prefetch", str(self.prefetch)]
        logfile = self.workdir / f"worker-{self.topology.name}-{index}.log"
        return WorkerProcess(args, self.env(), logfile).start()

    def enqueue(self, queues: list[str]) -> dict[str, int]:
        """N add(i, i) round-robin over ``queues``; returns task id -> expected value."""
        from django_taskq.broker.publish import publish_many

        build = self.add.build_envelope
        expected: dict[str, int] = {}
        for part in chunks(0, self.tasks, BULK_CHUNK):
            envelopes = [build((i, i), queue=queues[i % len(queues)]) for i in part]
            publish_many(envelopes)
            for i, envelope in zip(part, envelopes, strict=True):
                expected[envelope.id] = i + i
        return expected

    def queued(self, queues: list[str]) -> tuple[int, int]:
        """Messages waiting and fetched-not-acked over every queue."""
        return queued(self.client, queues)

    def cell(self, queue_count: int, worker_count: int) -> dict[str, Any]:
        n = self.tasks
        queues = [f"q{i}" for i in range(queue_count)]
        log(f"{self.topology.name}: {n} tasks, {queue_count} queue(s), {worker_count} worker(s)")
        self.topology.flush()
        if self.overrides.get("TASKQ_HISTORY") == "1":
            from django_taskq.history.models import TaskRecord

            TaskRecord.objects.all().delete()  # each cell's recorder starts on an empty table
        load = os.getloadavg()[0]
        cpu0 = self.topology.redis_cpu()
        expected = self.enqueue(queues)
        cpu1 = self.topology.redis_cpu()
        waiting, _ = self.queued(queues)
        if waiting != n:
            raise RuntimeError(f"expected {n} queued messages, found {waiting}")
        workers: list[WorkerProcess] = []
        samples: list[Sample] = []

        def sample() -> None:
            worker_cpu = sum(cpu_seconds(w.pid) for w in workers)
            samples.append(Sample(time.time(), worker_cpu, self.topology.redis_cpu()))

        sample()
        workers += [self.spawn(i, queues) for i in range(worker_count)]
        try:
            deadline = time.monotonic() + 120 + n / 100
            while True:
                for worker in workers:
                    worker.check_alive()
                waiting, pending = self.queued(queues)
                sample()
                if waiting == 0 and pending == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"drain did not finish: {waiting} queued, {pending} pending")
                time.sleep(0.05)  # polls Redis state, as the drain of bench.py does
            worker_total = sum(cpu_seconds(w.pid) for w in workers)
        finally:
            for worker in workers:
                worker.stop()
        first, last = verify_results(self.client, expected)
        # CPU used between the first and the last result, as the rate: worker
        # start-up, and Redis idling while the workers start, stay outside.
        start, end = interpolate(samples, first), interpolate(samples, last)
        drain_cpu = cpu_delta(start.redis, end.redis)
        enqueue_cpu = cpu_delta(cpu0, cpu1)
        busiest = max(drain_cpu.values())
        busiest_total = max(enqueue_cpu[p] + drain_cpu[p] for p in drain_cpu)
        return {
            "topology": self.topology.name,
            "config": self.config,
            "masters": len(drain_cpu),
            "queues": queue_count,
            "workers": worker_count,
            "tasks": n,
            "tasks_per_s": (n - 1) / (last - first) if last > first else 0.0,
            "drain_s": last - first,
            "redis_us_per_task": sum(drain_cpu.values()) / n * 1e6,
            "redis_enqueue_us_per_task": sum(enqueue_cpu.values()) / n * 1e6,
            "busiest_master_us_per_task": busiest / n * 1e6,
            "busiest_master_total_us_per_task": busiest_total / n * 1e6,
            "worker_us_per_task": (end.workers - start.workers) / n * 1e6,
            "worker_gross_us_per_task": worker_total / n * 1e6,
            "worker_cpu_s": worker_total,
            "redis_drain_cpu_s_by_port": {str(p): round(c, 4) for p, c in drain_cpu.items()},
            "samples": len(samples),
            "loadavg_1m": round(load, 2),
        }


def queued(client: Any, queues: list[str]) -> tuple[int, int]:
    """Messages waiting and fetched-not-acked in ``queues`` (their priority-PRIORITY streams).

    One stream a queue: every benchmark task is sent at PRIORITY, and a
    poll stays two commands a queue (it runs every 50 ms during a drain).
    """
    from django_taskq.broker import keys

    pipe = client.pipeline(transaction=False)
    for queue in queues:
        stream = keys.stream(queue, PRIORITY)
        pipe.xlen(stream)
        pipe.xpending(stream, keys.GROUP)
    replies = pipe.execute(raise_on_error=False)
    waiting = sum(int(r) for r in replies[0::2] if isinstance(r, int))
    pending = 0
    for reply in replies[1::2]:
        # No group yet (no worker read that stream) counts as nothing pending.
        pending += int(reply.get("pending", 0)) if isinstance(reply, dict) else 0
    return waiting, pending


class Sample(NamedTuple):
    """CPU seconds used so far, read at ``at`` (time.time(), the clock of date_done)."""

    at: float
    workers: float
    redis: dict[int, float]


def interpolate(samples: Sequence[Sample], at: float) -> Sample:
    """The CPU used until ``at``, linear between the two samples around it."""
    if at <= samples[0].at:
        return samples[0]
    for before, after in itertools.pairwise(samples):
        if before.at <= at <= after.at:
            share = (at - before.at) / (after.at - before.at) if after.at > before.at else 1.0
            redis = {
                port: before.redis[port] + (after.redis[port] - before.redis[port]) * share
                for port in after.redis
            }
            workers = before.workers + (after.workers - before.workers) * share
            return Sample(at, workers, redis)
    return samples[-1]


def verify_results(client: Any, expected: dict[str, int]) -> tuple[float, float]:
    """Check every result is SUCCESS with its value; return the (first, last) date_done."""
    from django_taskq.broker import keys
    from django_taskq.messages import loads

    first, last, bad = float("inf"), 0.0, 0
    ids = list(expected)
    for part in chunks(0, len(ids), BULK_CHUNK):
        task_ids = [ids[i] for i in part]
        pipe = client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.get(keys.result(task_id))
        for task_id, raw in zip(task_ids, pipe.execute(), strict=True):
            record = loads(raw) if raw is not None else {}
            if record.get("status") != "SUCCESS" or record.get("result") != expected[task_id]:
                bad += 1
                continue
            done = float(record["date_done"])
            first, last = min(first, done), max(last, done)
    if bad:
        raise RuntimeError(f"{bad} of {len(ids)} results are missing, not SUCCESS or wrong")
    return first, last


# -- projection ------------------------------------------------------------------
def project(cell: dict[str, Any], cores: int) -> float:
    """Tasks/s a machine of ``cores`` cores would drain and feed in steady state.

    Two bounds, from the CPU costs of ``cell``: each master runs on one
    core, so the busiest master saturates at 1e6 / (its µs per task,
    enqueue and drain); and every core is shared by the workers and the
    masters, so the machine saturates at cores * 1e6 / (worker µs + Redis
    µs per task, summed over the masters). The smaller bound is the
    projection. It assumes enough worker processes (one busy process
    drains about what one worker alone drains here) and counts neither the
    producers' CPU (building envelopes) nor the network between hosts.
    """
    worker_us = float(cell["worker_us_per_task"])
    redis_us = float(cell["redis_us_per_task"]) + float(cell["redis_enqueue_us_per_task"])
    if worker_us <= 0 or int(cell["masters"]) > cores:
        return 0.0
    redis_ceiling = 1e6 / float(cell["busiest_master_total_us_per_task"])
    return min(redis_ceiling, cores * 1e6 / (worker_us + redis_us))


# -- run -------------------------------------------------------------------------
@contextmanager
def broker_url(url: str) -> Iterator[None]:
    """Point this process's django_taskq at ``url`` (connections reset on setting_changed)."""
    from django.test import override_settings

    os.environ["TASKQ_BROKER_URL"] = url
    with override_settings(TASKQ_BROKER_URL=url):
        yield


def median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell from its repeats: the median of each figure; every run kept under "runs"."""
    if len(runs) == 1:
        return runs[0]
    cell = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            cell[key] = statistics.median(r[key] for r in runs)
    cell["runs"] = runs
    return cell


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["TASKQ_BENCH_DIR"] = str(workdir)
    os.environ.setdefault("TASKQ_BROKER_URL", "redis://127.0.0.1:1/0")
    django.setup()
    from django.core.management import call_command

    # The tables the workers' history recorder writes (TASKQ_HISTORY).
    call_command("migrate", verbosity=0)
    info = machine()
    info["hiredis"] = _hiredis_version()
    info["redis"] = subprocess.run(
        [shutil.which("redis-server") or "redis-server", "--version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    cells: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    configs = HISTORY_CONFIGS if args.history_cost else {"": {}}
    for name in args.topologies:
        log(f"starting {name}")
        topology = Topology(name).start()
        try:
            with broker_url(topology.url):
                bench = ScalingBench(topology, workdir, args.tasks, args.prefetch)
                for queue_count in args.queues:
                    for worker_count in args.workers:
                        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
                        order = list(configs)
                        for round_ in range(args.repeat):
                            # Each round starts with another setting: no setting
                            # is always the first (or last) of a round.
                            shift = round_ % len(order)
                            for config in order[shift:] + order[:shift]:
                                bench.config, bench.overrides = config, configs[config]
                                runs[config].append(bench.cell(queue_count, worker_count))
                        cells += [median_cell(r) for r in runs.values()]
                        if args.history_cost:
                            costs += paired_costs(runs)
                bench.client.close()
        finally:
            topology.close()
    info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    projections = [
        {
            "topology": c["topology"],
            "queues": c["queues"],
            "workers": c["workers"],
            **{f"{cores}_cores": round(project(c, cores)) for cores in PROJECT_CORES},
        }
        for c in cells
    ]
    return {
        "tasks": args.tasks,
        "repeat": args.repeat,
        "prefetch": args.prefetch,
        "machine": info,
        "cells": [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()} for c in cells
        ],
        "projections": projections,
        "history_cost": costs,
    }


def paired_costs(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each setting against ``off`` in the same round; the median over the rounds."""
    out = []
    for config, theirs in runs.items():
        if config == "off":
            continue
        pairs = list(zip(runs["off"], theirs, strict=True))
        slower = [1 - t["tasks_per_s"] / o["tasks_per_s"] for o, t in pairs if o["tasks_per_s"]]
        more = [t["worker_us_per_task"] - o["worker_us_per_task"] for o, t in pairs]
        share = [
            t["worker_us_per_task"] / o["worker_us_per_task"] - 1
            for o, t in pairs
            if o["worker_us_per_task"]
        ]
        first = theirs[0]
        out.append(
            {
                "topology": first["topology"],
                "queues": first["queues"],
                "workers": first["workers"],
                "config": config,
                "rounds": len(pairs),
                "drain_slower_pct": round(statistics.median(slower) * 100, 1),
                "drain_slower_pct_range": [
                    round(min(slower) * 100, 1),
                    round(max(slower) * 100, 1),
                ],
                "worker_us_more": round(statistics.median(more), 1),
                "worker_cpu_more_pct": round(statistics.median(share) * 100, 1),
            }
        )
    return out


# -- output ----------------------------------------------------------------------
COLUMNS = (
    ("topology", "topology", "{}"),
    ("config", "settings", "{}"),
    ("queues", "queues", "{}"),
    ("workers", "workers", "{}"),
    ("tasks_per_s", "tasks/s", "{:,.0f}"),
    ("redis_us_per_task", "Redis µs/task drain", "{:.1f}"),
    ("redis_enqueue_us_per_task", "enqueue", "{:.1f}"),
    ("busiest_master_total_us_per_task", "busiest master", "{:.1f}"),
    ("worker_us_per_task", "worker µs/task", "{:.1f}"),
    ("loadavg_1m", "load", "{:.2f}"),
)


def table(report: dict[str, Any]) -> str:
    """The cells, then the projections, as text tables."""
    m = report["machine"]
    lines = [
        f"django_taskq scaling: {report['tasks']} tasks a cell, median of {report['repeat']}; "
        f"{m['nproc']} CPU ({m['cpu']}), "
        f"Python {m['python']}, {m['redis']}, hiredis {m.get('hiredis') or 'no'}; "
        f"load {m['loadavg_before'][0]:.2f} before, {m['loadavg_after'][0]:.2f} after",
        "(Redis µs/task: CPU summed over the masters; busiest master: enqueue + drain on "
        "the master that does most; drain CPU between the first and the last result)",
    ]
    columns = COLUMNS if report["history_cost"] else [c for c in COLUMNS if c[0] != "config"]
    rows = [[label for _, label, _ in columns]]
    for cell in report["cells"]:
        rows.append([fmt.format(cell[key]) for key, _, fmt in columns])
    lines += _aligned(rows)
    if report["history_cost"]:
        lines.append(
            "history cost against off, paired by round (median over the rounds; "
            "drain: how much lower the rate; worker: more CPU per task):"
        )
        rows = [["topology", "queues", "workers", "settings", "rounds", "drain", "range", "worker"]]
        for c in report["history_cost"]:
            low, high = c["drain_slower_pct_range"]
            rows.append(
                [
                    c["topology"],
                    str(c["queues"]),
                    str(c["workers"]),
                    c["config"],
                    str(c["rounds"]),
                    f"{c['drain_slower_pct']:+.1f} %",
                    f"{low:+.1f}..{high:+.1f} %",
                    f"{c['worker_us_more']:+.1f} µs ({c['worker_cpu_more_pct']:+.1f} %)",
                ]
            )
        lines += _aligned(rows)
    lines.append(
        "projected tasks/s with more cores (min of the busiest master's core and "
        "cores / (worker + Redis CPU per task)):"
    )
    head = ["topology", "queues", "workers", *(f"{c} cores" for c in PROJECT_CORES)]
    rows = [head]
    for p in report["projections"]:
        rows.append(
            [p["topology"], str(p["queues"]), str(p["workers"])]
            + [f"{p[f'{c}_cores']:,}" if p[f"{c}_cores"] else "-" for c in PROJECT_CORES]
        )
    lines += _aligned(rows)
    return "\n".join(lines)


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench --scaling",
        description="Drain rate and CPU per task for 1..K workers, 1..Q queues, "
        "single Redis and Cluster, each against private servers.",
    )
    parser.add_argument("--tasks", type=int, default=20000, help="Tasks a cell (default 20000).")
    parser.add_argument(
        "--workers", type=_int_list, default=[1, 2, 4], help="Worker processes (default 1,2,4)."
    )
    parser.add_argument(
        "--queues", type=_int_list, default=[1, 8], help="Queues spread over (default 1,8)."
    )
    parser.add_argument(
        "--topologies",
        default=",".join(TOPOLOGIES),
        help="Comma-separated: single, cluster1, cluster3 (default all).",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Run each cell this many times; each figure is the median (default 1).",
    )
    parser.add_argument("--prefetch", type=int, default=None, help="--prefetch of the workers.")
    parser.add_argument(
        "--history-cost",
        action="store_true",
        help="Run each cell with task events, counters and the history recorder off, "
        "events and counters on, and all on, interleaved; report the cost against off.",
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
    args.topologies = [t.strip() for t in args.topologies.split(",") if t.strip()]
    unknown = set(args.topologies) - set(TOPOLOGIES)
    if unknown or not args.topologies:
        parser.error(f"--topologies takes {', '.join(TOPOLOGIES)}, not {', '.join(unknown)}")
    if args.tasks < 2 or args.repeat < 1:
        parser.error("--tasks must be at least 2 and --repeat at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scaling benchmark; returns the exit code."""
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="taskq-scale-"))
    try:
        report = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    show(report, args.json, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
