"""Benchmark of the hot path: ``python -m benchmarks.bench [--tasks N] [--quick] [--json]``.

In one run, with nothing to set up, it starts a private ``redis-server`` on a
free port (never the system Redis) and real ``taskq_worker`` subprocesses
(``DJANGO_SETTINGS_MODULE=benchmarks.bench_app.settings``, ``-l WARNING``),
and measures:

- enqueue, one by one: ``add.delay(i, i)`` calls per second;
- enqueue, in bulk: ``add.build_envelope((i, i))`` + ``publish_many()`` in
  chunks (one pipelined round trip a chunk), tasks per second;
- drain: N queued ``add(i, i)`` run by one worker process with results
  stored, for ``-P solo`` and ``-P prefork -c 1``. All N are enqueued while
  no worker runs; then the worker starts. The rate is taken between the
  first and the last result's ``date_done`` (stamped by the worker), so
  worker start-up is excluded; the start-up and the wall time from spawn
  are reported too. Every result is read back and checked (SUCCESS, 2*i);
- latency: p50/p90/p99 of sequential ``add.delay(1, 1).get()`` round trips
- ETA lateness: p50/p99 of how long after its due time an ETA task is done
  with an idle solo worker;
- memory: VmRSS of the worker process and its children after the drain.

The figures are printed as a table; ``--json`` prints them as JSON instead
(``--json FILE`` writes the JSON to FILE and still prints the table).
``--scaling`` runs the scaling benchmark of ``benchmarks.bench_scale``
instead (worker processes x queues x single Redis and Cluster).
docs/benchmarks.md explains the method and records measured figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from django_taskq.testing import RedisServer

SETTINGS_MODULE = "benchmarks.bench_app.settings"
QUEUE = "default"
PRIORITY = 5
#: Envelopes per publish_many() call (one pipelined round trip each).
BULK_CHUNK = 1000
#: Latency round trips run (and discarded) before the measured ones.
LATENCY_WARMUP = 20

#: Every figure the benchmark reports: JSON key -> (label, unit).
FIGURES: dict[str, tuple[str, str]] = {
    "enqueue_one_per_s": ("enqueue one by one: add.delay(i, i)", "calls/s"),
    "enqueue_bulk_per_s": ("enqueue bulk: build_envelope + publish_many", "tasks/s"),
    "publish_many_per_s": ("  of which publish_many alone", "tasks/s"),
    "drain_solo_per_s": ("drain, -P solo, results stored", "tasks/s"),
    "drain_prefork_per_s": ("drain, -P prefork -c 1, results stored", "tasks/s"),
    "latency_p50_ms": ("round trip delay().get(), p50", "ms"),
    "latency_p90_ms": ("round trip delay().get(), p90", "ms"),
    "latency_p99_ms": ("round trip delay().get(), p99", "ms"),
    "eta_late_p50_ms": ("ETA lateness (due -> done), p50", "ms"),
    "eta_late_p99_ms": ("ETA lateness (due -> done), p99", "ms"),
    "rss_solo_kib": ("RSS after drain, solo worker", "KiB"),
    "rss_prefork_kib": ("RSS after drain, prefork parent + child", "KiB"),
}


# -- helpers -------------------------------------------------------------------
def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the figures."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def proc_kib(pid: int, path: str, field: str) -> int:
    """The ``field:`` line of /proc/<pid>/<path> in KiB (0 if gone or not Linux)."""
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def vm_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (pages shared with other processes count in full)."""
    return proc_kib(pid, "status", "VmRSS")


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB (shared pages divided among sharers)."""
    return proc_kib(pid, "smaps_rollup", "Pss")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far, from /proc/<pid>/stat (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def descendants(root: int) -> list[int]:
    """PIDs of every descendant of ``root`` (children, grandchildren...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def machine() -> dict[str, Any]:
    """What the figures were measured on (Redis version is added later)."""
    cpu = platform.processor() or platform.machine()
    mem_kib = 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
                    break
    except (OSError, ValueError, IndexError):
        pass
    return {
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _hiredis_version() -> str | None:
    """hiredis version when redis-py can use it (it parses and packs in C), else None."""
    from importlib import metadata

    try:
        return metadata.version("hiredis")
    except metadata.PackageNotFoundError:
        return None


def chunks(start: int, stop: int, size: int) -> Iterator[range]:
    """``range(start, stop)`` in consecutive pieces of at most ``size``."""
    for low in range(start, stop, size):
        yield range(low, min(low + size, stop))


# -- worker subprocess ---------------------------------------------------------
class WorkerProcess:
    """A ``python -m django taskq_worker`` subprocess in a session of its own."""

    def __init__(self, args: list[str], env: dict[str, str], logfile: Path) -> None:
        self.args = args
        self.env = env
        self.logfile = logfile
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned = 0.0  # time.time() of the spawn

    def start(self) -> WorkerProcess:
        cmd = [sys.executable, "-m", "django", "taskq_worker", "-l", "WARNING", *self.args]
        with open(self.logfile, "ab") as out:
            self.spawned = time.time()
            self.process = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        """Raise with the worker's output if it has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"worker {' '.join(self.args)} exited with code {self.process.returncode}:\n"
                + self.output()
            )

    def output(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def rss_kib(self) -> dict[str, int]:
        """VmRSS of the worker and of each of its descendants."""
        out = {"worker": vm_rss_kib(self.pid)}
        for index, pid in enumerate(descendants(self.pid)):
            out[f"child{index}"] = vm_rss_kib(pid)
        return out

    def pss_kib(self) -> int:
        """Total PSS of the worker and its descendants (fork-shared pages counted once)."""
        return sum(pss_kib(pid) for pid in [self.pid, *descendants(self.pid)])

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM); SIGKILL its process group if it does not exit."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"worker {process.pid} did not stop in {timeout:g}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


# -- the benchmark -------------------------------------------------------------
class Bench:
    """One benchmark run against a private redis-server."""

    def __init__(self, server: RedisServer, workdir: Path, tasks: int, latency: int) -> None:
        from benchmarks.bench_app.tasks import add
        from django_taskq.broker import keys
        from django_taskq.broker.connection import get_broker

        self.server = server
        self.workdir = workdir
        self.tasks = tasks
        self.latency_calls = latency
        self.add = add
        self.client: redis.Redis = get_broker()
        self.stream = keys.stream(QUEUE, PRIORITY)
        self.result_key = keys.result
        self.figures: dict[str, Any] = {}
        self.details: dict[str, Any] = {}
        self.workers: list[WorkerProcess] = []
        self.expected: dict[str, int] = {}  # task id -> the value add() must return
        self.worker_extra: list[str] = []  # more taskq_worker arguments (--prefetch)

    def worker_env(self) -> dict[str, str]:
        return worker_env(self.server.url, self.workdir)

    def start_worker(self, *args: str) -> WorkerProcess:
        name = "-".join(a.strip("-") for a in args)
        worker = WorkerProcess(list(args), self.worker_env(), self.workdir / f"worker-{name}.log")
        self.workers.append(worker.start())
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()

    # -- enqueue -------------------------------------------------------------------
    def enqueue_one_by_one(self) -> None:
        n = self.tasks
        log(f"enqueue one by one: {n} x add.delay(i, i)")
        delay = self.add.delay
        started = time.perf_counter()
        for i in range(n):
            delay(i, i)
        elapsed = time.perf_counter() - started
        self.figures["enqueue_one_per_s"] = n / elapsed
        self._check_queued(n)
        self.client.flushdb()

    def enqueue_bulk(self) -> None:
        """Enqueue ``tasks`` add(i, i) with publish_many; they stay queued for a drain."""
        from django_taskq.broker.publish import publish_many

        n = self.tasks
        build = self.add.build_envelope
        self.expected = {}
        published = 0.0
        started = time.perf_counter()
        for part in chunks(0, n, BULK_CHUNK):
            envelopes = [build((i, i)) for i in part]
            t0 = time.perf_counter()
            publish_many(envelopes)
            published += time.perf_counter() - t0
            for i, envelope in zip(part, envelopes, strict=True):
                self.expected[envelope.id] = i + i
        elapsed = time.perf_counter() - started
        self._check_queued(n)
        rates = {"tasks_per_s": n / elapsed, "publish_many_per_s": n / published}
        self.details.setdefault("enqueue_bulk_runs", []).append(rates)
        if "enqueue_bulk_per_s" not in self.figures:  # the first run gives the figure
            self.figures["enqueue_bulk_per_s"] = rates["tasks_per_s"]
            self.figures["publish_many_per_s"] = rates["publish_many_per_s"]

    def _check_queued(self, n: int) -> None:
        length = int(self.client.xlen(self.stream))
        if length != n:
            raise RuntimeError(f"expected {n} messages on {self.stream}, found {length}")

    # -- drain ---------------------------------------------------------------------
    def drain(self, *worker_args: str) -> tuple[WorkerProcess, dict[str, Any]]:
        """Start a worker on a full queue, wait until it is empty, check every result.

        Returns the worker (still running, idle) and what was measured.
        """
        n = self.tasks
        log(f"drain {n} tasks with taskq_worker {' '.join(worker_args)}")
        redis_pid = self.server.process.pid if self.server.process else 0
        redis_cpu = cpu_seconds(redis_pid)
        worker = self.start_worker(*worker_args)
        deadline = time.monotonic() + 120 + n / 100
        while True:
            worker.check_alive()
            pipe = self.client.pipeline(transaction=False)
            pipe.xlen(self.stream)
            pipe.xpending(self.stream, "taskq")
            length, pending = pipe.execute(raise_on_error=False)
            pending_count = pending.get("pending", 0) if isinstance(pending, dict) else -1
            if length == 0 and pending_count == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"drain did not finish: {length} queued, {pending} pending")
            time.sleep(0.05)
        wall = time.time() - worker.spawned
        redis_cpu = cpu_seconds(redis_pid) - redis_cpu
        worker_cpu = {"worker": cpu_seconds(worker.pid)}
        for index, pid in enumerate(descendants(worker.pid)):
            worker_cpu[f"child{index}"] = cpu_seconds(pid)
        first, last = self._verify_results()
        rate = (n - 1) / (last - first) if n > 1 and last > first else n / wall
        return worker, {
            "tasks_per_s": rate,
            "startup_s": first - worker.spawned,
            "first_to_last_s": last - first,
            "wall_from_spawn_s": wall,
            "wall_from_spawn_per_s": n / wall,
            "rss_kib": worker.rss_kib(),
            "pss_kib": worker.pss_kib(),
            # CPU seconds since spawn (start-up included), and Redis's during the drain.
            "worker_cpu_s": worker_cpu,
            "redis_cpu_us_per_task": redis_cpu / n * 1e6,
        }

    def _verify_results(self) -> tuple[float, float]:
        """Check every task stored SUCCESS with 2*i; return the (first, last) date_done."""
        from django_taskq.messages import loads

        first, last, bad = math.inf, 0.0, 0
        ids = list(self.expected)
        for start in range(0, len(ids), BULK_CHUNK):
            part = ids[start : start + BULK_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for task_id in part:
                pipe.get(self.result_key(task_id))
            for task_id, raw in zip(part, pipe.execute(), strict=True):
                record = loads(raw) if raw is not None else {}
                want = self.expected[task_id]
                if record.get("status") != "SUCCESS" or record.get("result") != want:
                    bad += 1
                    continue
                done = float(record["date_done"])
                first, last = min(first, done), max(last, done)
        if bad:
            raise RuntimeError(f"{bad} of {len(ids)} results are missing, not SUCCESS or wrong")
        return first, last

    # -- latency ---------------------------------------------------------------------
    def latency(self) -> None:
        """Sequential delay().get() round trips with an idle solo worker."""
        m = self.latency_calls
        from django_taskq.exceptions import TimeoutError as TaskqTimeoutError

        log(f"latency: {m} x add.delay(1, 1).get() with an idle solo worker")
        worker = self.start_worker("-P", "solo", *self.worker_extra)
        delay = self.add.delay
        deadline = time.monotonic() + 60
        while True:  # wait for the worker (its start-up is not measured)
            worker.check_alive()
            try:
                delay(0, 0).get(timeout=1)
                break
            except TaskqTimeoutError:  # until the worker runs
                if time.monotonic() > deadline:
                    raise
        for _ in range(LATENCY_WARMUP):
            delay(1, 1).get(timeout=10)
        samples = []
        for _ in range(m):
            t0 = time.perf_counter()
            value = delay(1, 1).get(timeout=10)
            samples.append(time.perf_counter() - t0)
            if value != 2:
                raise RuntimeError(f"add(1, 1) returned {value!r}")
        samples.sort()
        for pct in (50, 90, 99):
            self.figures[f"latency_p{pct}_ms"] = percentile(samples, pct) * 1000
        self.details["latency"] = {
            "calls": m,
            "mean_ms": sum(samples) / len(samples) * 1000,
            "min_ms": samples[0] * 1000,
            "max_ms": samples[-1] * 1000,
        }
        self.eta_lateness()
        worker.stop()

    def eta_lateness(self) -> None:
        """How late ETA tasks finish after their due time, with an idle worker.

        Each call is sent alone with an ETA 50-250 ms ahead, so the worker is
        asleep when it falls due (the delayed set, woken by pub/sub and its
        own timer). Lateness = the result's ``date_done`` - the ETA: it holds
        the promotion, the fetch and the (empty) run.
        """
        import random

        n = max(10, self.latency_calls // 10)
        log(f"ETA lateness: {n} x add.apply_async(eta=now + 50..250 ms), one at a time")
        rng = random.Random(7)
        late = []
        for _ in range(n):
            eta = time.time() + rng.uniform(0.05, 0.25)
            result = self.add.apply_async((1, 1), eta=eta)
            result.get(timeout=10)
            done = result.date_done
            assert done is not None
            late.append(done.timestamp() - eta)
        if min(late) < -0.002:
            raise RuntimeError(f"an ETA task ran {-min(late) * 1000:.1f} ms before its due time")
        late.sort()
        self.figures["eta_late_p50_ms"] = max(percentile(late, 50) * 1000, 0.001)
        self.figures["eta_late_p99_ms"] = max(percentile(late, 99) * 1000, 0.001)
        self.details["eta"] = {"calls": n, "max_ms": late[-1] * 1000, "min_ms": late[0] * 1000}

    # -- whole run ---------------------------------------------------------------------
    def run(self, pools: list[str], repeat: int = 1) -> None:
        """Every measurement; each drain ``repeat`` times (the median is the figure)."""
        self.client.flushdb()
        self.enqueue_one_by_one()
        for pool in pools:
            args = ["-P", "solo"] if pool == "solo" else ["-P", "prefork", "-c", "1"]
            args += self.worker_extra
            runs = []
            for _ in range(repeat):
                self.client.flushdb()
                self.enqueue_bulk()
                worker, run = self.drain(*args)
                worker.stop()
                runs.append(run)
            rates = sorted(r["tasks_per_s"] for r in runs)
            self.figures[f"drain_{pool}_per_s"] = statistics.median(rates)
            self.figures[f"rss_{pool}_kib"] = sum(runs[-1]["rss_kib"].values())
            self.details[f"drain_{pool}_per_s"] = {"worker_args": args, "runs": runs}
        self.latency()


# -- output --------------------------------------------------------------------
def format_value(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.3f}"
    if unit == "KiB":
        return f"{value / 1024:.1f}"
    return f"{value:,.0f}"


def table(report: dict[str, Any]) -> str:
    """The figures as a compact text table."""
    m = report["machine"]
    lines = [
        f"django_taskq bench: {report['tasks']} tasks, {report['latency_calls']} round trips; "
        f"{m['nproc']} CPU ({m['cpu']}), Python {m['python']}, Redis {m.get('redis', '?')}, "
        f"hiredis {m.get('hiredis') or 'no'}; load {m['loadavg_before'][0]:.2f}",
    ]
    width = max(len(label) for label, _ in FIGURES.values())
    for key, (label, unit) in FIGURES.items():
        if key in report["figures"]:
            value = format_value(float(report["figures"][key]), unit)
            shown = "MiB" if unit == "KiB" else unit
            lines.append(f"  {label:<{width}}  {value:>10} {shown}")
    for key in ("drain_solo_per_s", "drain_prefork_per_s"):
        detail = report["details"].get(key)
        if detail:
            runs = detail["runs"]
            startup = statistics.median(r["startup_s"] for r in runs)
            wall = statistics.median(r["wall_from_spawn_per_s"] for r in runs)
            each = ", ".join(f"{r['tasks_per_s']:,.0f}" for r in runs)
            pss = runs[-1].get("pss_kib", 0) / 1024
            lines.append(
                f"  ({key[6:-6]}: {len(runs)} run(s) [{each}]; start-up {startup:.2f}s "
                f"excluded; from spawn {wall:,.0f} tasks/s; PSS {pss:.1f} MiB)"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Benchmark enqueue, drain, latency and memory against a private Redis.",
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="Tasks enqueued and drained per figure (default 20000; --quick 500).",
    )
    parser.add_argument(
        "--latency",
        type=int,
        default=None,
        help="Measured delay().get() round trips (default 500; --quick 50).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Small sizes, for a CI smoke run (the figures are not meaningful).",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Drain this many times per pool; the median is reported (default 1).",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="Pass --prefetch N to the workers (default: TASKQ_WORKER_PREFETCH).",
    )
    parser.add_argument(
        "--pools",
        default="solo,prefork",
        help="Pools to drain with, comma-separated: solo, prefork (default both).",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="Run the scaling benchmark instead (workers x queues x topologies; its options: "
        "python -m benchmarks.bench --scaling --help).",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="Print the figures as JSON instead of a table; with FILE, write the "
        "JSON there and still print the table.",
    )
    args = parser.parse_args(argv)
    args.tasks = args.tasks or (500 if args.quick else 20000)
    args.latency = args.latency or (50 if args.quick else 500)
    args.pools = [p.strip() for p in args.pools.split(",") if p.strip()]
    if args.tasks < 1 or args.latency < 1 or args.repeat < 1:
        parser.error("--tasks, --latency and --repeat must be at least 1")
    unknown = set(args.pools) - {"solo", "prefork"}
    if unknown or not args.pools:
        parser.error(f"--pools takes solo and/or prefork, not {', '.join(sorted(unknown))}")
    return args


def worker_env(broker_url: str, workdir: Path) -> dict[str, str]:
    """Environment of a benchmark worker: the bench settings, this checkout first on the path."""
    package_root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "TASKQ_BROKER_URL": broker_url,
        "TASKQ_BENCH_DIR": str(workdir),
        "PYTHONPATH": package_root + (os.pathsep + path if path else ""),
        "PYTHONUNBUFFERED": "1",
    }


def _migrate() -> None:
    """Create the bench database's tables: the workers' history recorder writes rows."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def set_up(broker_url: str, workdir: Path) -> None:
    """This process on the benchmark's own settings, whatever the environment says, migrated."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["TASKQ_BROKER_URL"] = broker_url
    os.environ["TASKQ_BENCH_DIR"] = str(workdir)
    import django

    django.setup()
    _migrate()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    if "--scaling" in given:
        from benchmarks.bench_scale import main as scaling_main

        return scaling_main([a for a in given if a != "--scaling"])
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="taskq-bench-"))
    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    bench: Bench | None = None
    try:
        set_up(server.url, workdir)
        bench = Bench(server, workdir, args.tasks, args.latency)
        if args.prefetch:
            bench.worker_extra = ["--prefetch", str(args.prefetch)]
        info = machine()
        info["redis"] = str(bench.client.info("server").get("redis_version", "?"))
        info["hiredis"] = _hiredis_version()
        bench.run(args.pools, args.repeat)
        info["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        report = {
            "tasks": args.tasks,
            "latency_calls": args.latency,
            "repeat": args.repeat,
            "prefetch": args.prefetch,
            "machine": info,
            "figures": {k: round(float(v), 3) for k, v in bench.figures.items()},
            "details": bench.details,
        }
    finally:
        if bench is not None:
            bench.close()
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    show(report, args.json, table)
    return 0


def show(
    report: dict[str, Any], json_arg: str | None, as_table: Callable[[dict[str, Any]], str]
) -> None:
    """Print the table (and write the JSON to ``json_arg``), or the JSON alone with ``-``."""
    text = json.dumps(report, indent=2, default=str)
    if json_arg == "-":
        print(text)
    else:
        if json_arg:
            Path(json_arg).write_text(text + "\n")
        print(as_table(report))


if __name__ == "__main__":
    sys.exit(main())
