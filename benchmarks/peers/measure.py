"""One row of the peers benchmark: one system, one set-up, measured in this interpreter.

    python -m benchmarks.peers.measure SYSTEM VARIANT --redis-url URL --tasks N
        --latency M --workdir DIR

``benchmarks.peers.run`` starts this once per row and round, with the
Python of the virtualenv that has the system (``.venv`` for django_taskq,
``.venv-peers`` for the others), and reads the JSON it prints. Only the
standard library and the system under test are imported, so the same
measuring code runs for every system:

1. enqueue one by one: N x ``delay(i, i)`` (or the system's equivalent);
2. bulk enqueue: N calls through the system's bulk API, 1,000 a call,
   where it has one; else the tasks are enqueued one by one again (no
   figure). These N tasks stay queued for the drain;
3. drain: the worker starts on the full queue; the first task's result is
   polled every 5 ms (start-up to first result), then the last task's
   every 20 ms; then every result is read back and checked (``2 * i``).
   "from start" = N / (all done - spawn); "steady" = (N - 1) / (all done -
   first result);
4. memory: RSS and PSS of the worker and its descendants, idle after the drain;
5. round trip: on the same idle worker, 20 warm-up calls, then M sequential
   ``delay(1, 1)`` + blocking get of the result, each timed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from benchmarks.bench import descendants, percentile, pss_kib, vm_rss_kib

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ("taskq", "celery", "huey", "dramatiq", "rq")
VARIANTS = ("defaults", "tuned")
BULK_CHUNK = 1000
LATENCY_WARMUP = 20
#: Seconds a worker gets to run its first task, and per task beyond.
STARTUP_DEADLINE = 120.0
PER_TASK_DEADLINE = 0.05


class Driver(Protocol):
    """What a system's adapter (``benchmarks/peers/peer_<system>.py``) gives this module."""

    #: How this row is set up, in the words of the table ("prefork -c 1, defaults").
    setup: str
    #: The bulk API used ("delay_many"), or "" when the system has none.
    bulk_api: str

    def versions(self) -> dict[str, str]: ...
    def delay(self, i: int) -> Any: ...
    def bulk(self, part: range) -> list[Any]: ...
    def done(self, handle: Any) -> bool: ...
    def value(self, handle: Any) -> Any: ...
    def get(self, handle: Any, timeout: float) -> Any: ...
    def worker_argv(self) -> list[str]: ...
    def worker_env(self) -> dict[str, str]: ...
    def flush(self) -> None: ...


def log(message: str) -> None:
    """Progress on stderr; stdout carries the JSON alone."""
    print(f"peers: {message}", file=sys.stderr, flush=True)


def base_env(redis_url: str, variant: str, workdir: Path) -> dict[str, str]:
    """The environment every worker gets: the checkout importable, the private Redis."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
        "PYTHONUNBUFFERED": "1",
        "PEERS_REDIS_URL": redis_url,
        "PEERS_VARIANT": variant,
        "PEERS_WORKDIR": str(workdir),
    }


class Worker:
    """The system's worker as a subprocess in a session of its own."""

    def __init__(self, argv: list[str], env: dict[str, str], logfile: Path) -> None:
        self.logfile = logfile
        with open(logfile, "ab") as out:
            self.spawned = time.perf_counter()
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        """Raise with the worker's last output if it has exited."""
        if self.process.poll() is not None:
            tail = self.logfile.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker exited with code {self.process.returncode}:\n{tail}")

    def memory_kib(self) -> tuple[int, int]:
        """(RSS, PSS) of the worker and every descendant, in KiB."""
        pids = [self.process.pid, *descendants(self.process.pid)]
        return sum(vm_rss_kib(p) for p in pids), sum(pss_kib(p) for p in pids)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the worker's process group; SIGKILL it if it does not exit in time."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"worker {self.process.pid} did not stop in {timeout:g}s; killing it")
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            self.process.wait(10)


def wait_done(driver: Driver, handle: Any, worker: Worker, interval: float, until: float) -> float:
    """Poll until ``handle``'s result is stored; return when it was seen."""
    while not driver.done(handle):
        worker.check_alive()
        if time.perf_counter() > until:
            raise RuntimeError("the drain did not finish in time")
        time.sleep(interval)
    return time.perf_counter()


def enqueue_one_by_one(driver: Driver, n: int) -> float:
    """N x delay(i, i); calls per second."""
    started = time.perf_counter()
    for i in range(n):
        driver.delay(i)
    return n / (time.perf_counter() - started)


def enqueue_bulk(driver: Driver, n: int) -> tuple[list[Any], float | None]:
    """N tasks queued for the drain, and the bulk rate (None without a bulk API)."""
    if not driver.bulk_api:
        return [driver.delay(i) for i in range(n)], None
    handles: list[Any] = []
    started = time.perf_counter()
    for low in range(0, n, BULK_CHUNK):
        handles += driver.bulk(range(low, min(low + BULK_CHUNK, n)))
    return handles, n / (time.perf_counter() - started)


def drain(driver: Driver, handles: list[Any], worker: Worker) -> dict[str, float]:
    """Wait for every result of ``handles`` (the i-th must be 2i); the drain's figures."""
    n = len(handles)
    until = worker.spawned + STARTUP_DEADLINE + n * PER_TASK_DEADLINE
    first = wait_done(driver, handles[0], worker, 0.005, until)
    last = wait_done(driver, handles[-1], worker, 0.02, until)
    bad = []
    for i, handle in enumerate(handles):
        if not driver.done(handle):  # a task run out of order: wait for it too
            last = max(last, wait_done(driver, handle, worker, 0.02, until))
        value = driver.value(handle)
        if value != 2 * i:
            bad.append((i, value))
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} results are wrong, e.g. add({bad[0][0]}, ...)")
    return {
        "startup_s": first - worker.spawned,
        "drain_from_start_per_s": n / (last - worker.spawned),
        "drain_steady_per_s": (n - 1) / (last - first) if last > first else 0.0,
    }


def round_trips(driver: Driver, m: int) -> dict[str, float]:
    """M sequential delay(1, 1) + blocking get, after a warm-up; p50 and p99 in ms."""
    for _ in range(LATENCY_WARMUP):
        driver.get(driver.delay(1), 10)
    samples = []
    for _ in range(m):
        t0 = time.perf_counter()
        value = driver.get(driver.delay(1), 10)
        samples.append(time.perf_counter() - t0)
        if value != 2:
            raise RuntimeError(f"add(1, 1) returned {value!r}")
    samples.sort()
    return {
        "latency_p50_ms": percentile(samples, 50) * 1000,
        "latency_p99_ms": percentile(samples, 99) * 1000,
    }


def measure(driver: Driver, n: int, m: int, workdir: Path, name: str) -> dict[str, Any]:
    """Every figure of one row."""
    figures: dict[str, Any] = {}
    driver.flush()
    log(f"{name}: enqueue {n} one by one")
    figures["enqueue_one_per_s"] = enqueue_one_by_one(driver, n)
    driver.flush()
    log(f"{name}: enqueue {n} in bulk ({driver.bulk_api or 'none: one by one'})")
    handles, figures["enqueue_bulk_per_s"] = enqueue_bulk(driver, n)
    log(f"{name}: drain {n} with {' '.join(Path(a).name for a in driver.worker_argv()[:4])}...")
    worker = Worker(driver.worker_argv(), driver.worker_env(), workdir / f"worker-{name}.log")
    try:
        figures.update(drain(driver, handles, worker))
        figures["rss_kib"], figures["pss_kib"] = worker.memory_kib()
        log(f"{name}: {m} round trips")
        figures.update(round_trips(driver, m))
    finally:
        worker.stop()
        driver.flush()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.measure")
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--latency", type=int, default=500)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.redis_url.rstrip("/").split(":")[-1].split("/")[0] == "6379":
        parser.error("the peers benchmark never uses Redis on 6379: give it a private server")
    env = base_env(args.redis_url, args.variant, args.workdir)
    # Before the import: an adapter configures its app from these at import time.
    os.environ.update({k: v for k, v in env.items() if k.startswith("PEERS_")})
    module = importlib.import_module(f"benchmarks.peers.peer_{args.system}")
    driver: Driver = module.make_driver(args.variant, args.redis_url, env)
    name = f"{args.system}-{args.variant}"
    figures = measure(driver, args.tasks, args.latency, args.workdir, name)
    report = {
        "system": args.system,
        "variant": args.variant,
        "setup": driver.setup,
        "bulk_api": driver.bulk_api,
        "versions": driver.versions(),
        "python": sys.version.split()[0],
        "tasks": args.tasks,
        "latency_calls": args.latency,
        "figures": figures,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
