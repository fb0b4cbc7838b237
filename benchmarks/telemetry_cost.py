"""What task events and counters cost a worker, in instructions, not seconds.

The drain benchmark (``--history-cost``) times real workers on a shared
2-core VM, where the same setting's CPU per task moves by 20 % between
runs: more than the effect it is meant to measure. This measures the
worker's own work instead, counted by valgrind (callgrind's instruction
count, ``Ir``), which does not depend on what else the machine runs.

How: a private redis-server is filled with N queued ``add(i, i)`` calls;
then one process, under ``valgrind --tool=callgrind``, sets Django up and
drains them with the solo worker's own consumer loop (``Consumer`` with
``max_tasks=N``: fetch, run, store the result, settle, flush), and exits.
It is done for two N and the difference is divided by the difference of
the N, so interpreter start, imports and set-up cancel out. Each setting
(``off``: TASKQ_EVENTS=0 and TASKQ_METRICS=0; ``events``: both on) is
run ``--repeat`` times, interleaved. Redis's own CPU per task is read
from its ``INFO CPU`` over each drain (seconds, so it does depend on the
machine; it is reported for both settings side by side).

The history recorder is not in these counts: it is a process of its own
(``nice`` +10), not work the worker's consumer does; docs/benchmarks.md
("History recorder") measures how fast it records.

    python benchmarks/telemetry_cost.py [--small 1000] [--large 4000] [--repeat 2]

Needs valgrind and redis-server; takes a few minutes (Python runs about
50 times slower under callgrind).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASK = "telemetry_cost.add"
QUEUE = "default"
SETTINGS = {
    "off": {"TASKQ_EVENTS": "0", "TASKQ_METRICS": "0"},
    "events": {"TASKQ_EVENTS": "1", "TASKQ_METRICS": "1"},
    # Each alone, to split the cost (--split).
    "events-only": {"TASKQ_EVENTS": "1", "TASKQ_METRICS": "0"},
    "counters-only": {"TASKQ_EVENTS": "0", "TASKQ_METRICS": "1"},
}
#: What a run compares unless --split is given.
MAIN = ("off", "events")


def configure() -> None:
    """Django settings for both sides (the broker URL and telemetry from the environment)."""
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="telemetry-cost",
        USE_TZ=True,
        INSTALLED_APPS=["django_taskq"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TASKQ_BROKER_URL=os.environ["TASKQ_BROKER_URL"],
        TASKQ_KEY_PREFIX="telemetrycost",
        TASKQ_EVENTS=os.environ.get("TASKQ_EVENTS", "1") == "1",
        TASKQ_METRICS=os.environ.get("TASKQ_METRICS", "1") == "1",
        TASKQ_HISTORY=False,
        LOGGING_CONFIG=None,
    )
    django.setup()


def define_task() -> Any:
    from django_taskq import shared_task

    @shared_task(name=TASK)
    def add(x: int, y: int) -> int:
        return x + y

    return add


def drain(n: int, slowdown: float) -> None:
    """The measured process: drain ``n`` queued tasks with the solo consumer loop.

    The consumer batches by the clock (a flush every 5 ms at most, fetches
    sized to take about 50 ms): under valgrind everything runs ``slowdown``
    times slower, so its clock constants are stretched by as much, or it
    would flush after every task or two and measure a worker nobody runs.
    The flushes and fetches it made are printed, to compare with a native
    run (``--native``).
    """
    import threading

    configure()
    define_task()
    from django_taskq.worker import consumer as consumer_module
    from django_taskq.worker import settle as settle_module
    from django_taskq.worker.consumer import Consumer

    consumer_module.FLUSH_INTERVAL *= slowdown
    consumer_module.BATCH_TARGET_SECONDS *= slowdown
    made = {"flush": 0, "fetch": 0}
    write = settle_module._write
    fetch = Consumer._fetch

    def counted_write(*args: Any, **kwargs: Any) -> None:
        made["flush"] += 1
        write(*args, **kwargs)

    def counted_fetch(self: Consumer) -> Any:
        made["fetch"] += 1
        return fetch(self)

    settle_module._write = counted_write  # type: ignore[assignment]
    Consumer._fetch = counted_fetch  # type: ignore[method-assign]
    began = time.perf_counter()
    Consumer("telemetry-cost", [QUEUE], "cost@bench", threading.Event(), max_tasks=n).run()
    wall = time.perf_counter() - began
    print(
        f"STATS flushes={made['flush']} fetches={made['fetch']} wall_us={wall / n * 1e6:.2f}",
        file=sys.stderr,
    )


def fill(n: int) -> None:
    """Queue ``n`` add(i, i) calls (run outside valgrind)."""
    configure()
    add = define_task()
    for start in range(0, n, 1000):
        add.delay_many((i, i) for i in range(start, min(n, start + 1000)))


def redis_cpu(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_one(
    url: str, setting: str, n: int, workdir: Path, slowdown: float
) -> tuple[int, float, str]:
    """(worker instructions, Redis CPU seconds) of one drain of ``n`` tasks."""
    env = {**os.environ, "TASKQ_BROKER_URL": url, **SETTINGS[setting]}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    me = str(Path(__file__).resolve())
    subprocess.run([sys.executable, me, "--fill", str(n)], env=env, check=True)
    out = workdir / f"callgrind-{setting}-{n}.out"
    before = redis_cpu(url)
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            me,
            "--drain",
            str(n),
            "--slowdown",
            str(slowdown),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    spent = redis_cpu(url) - before
    found = re.search(r"Collected : (\d+)", result.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    stats = re.search(r"STATS (.*)", result.stderr)
    return int(found.group(1)), spent, stats.group(1) if stats else "?"


def native(url: str, setting: str, n: int) -> float:
    """One drain without valgrind; prints its flushes and fetches, returns its µs a task."""
    env = {**os.environ, "TASKQ_BROKER_URL": url, **SETTINGS[setting]}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    me = str(Path(__file__).resolve())
    subprocess.run([sys.executable, me, "--fill", str(n)], env=env, check=True)
    result = subprocess.run(
        [sys.executable, me, "--drain", str(n), "--slowdown", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    stats = re.search(r"STATS (.*)", result.stderr)
    if not stats:
        raise RuntimeError(f"the drain printed no figures:\n{result.stderr[-2000:]}")
    print(f"native {setting} n={n}: {stats.group(1)}", flush=True)
    return float(stats.group(1).rsplit("wall_us=", 1)[1])


def wall(url: str, chosen: list[str], n: int, rounds: int) -> None:
    """Wall time a task of native drains, interleaved, paired against ``off`` by round."""
    times: dict[str, list[float]] = {s: [] for s in chosen}
    for round_ in range(rounds):
        order = chosen if round_ % 2 == 0 else list(reversed(chosen))
        for setting in order:
            times[setting].append(native(url, setting, n))
    print()
    print("| setting | drain µs/task (median) | slower than `off` (median of rounds, range) |")
    print("|---|---|---|")
    for setting in chosen:
        ratios = [t / o - 1 for t, o in zip(times[setting], times["off"], strict=True)]
        print(
            f"| `{setting}` | {statistics.median(times[setting]):.1f} | "
            f"{statistics.median(ratios) * 100:+.1f} % "
            f"({min(ratios) * 100:+.1f} … {max(ratios) * 100:+.1f} %) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--slowdown",
        type=float,
        default=50.0,
        help="how many times slower Python runs under valgrind (stretches the consumer's clock)",
    )
    parser.add_argument("--native", action="store_true", help="also drain once without valgrind")
    parser.add_argument("--split", action="store_true", help="also events alone and counters alone")
    parser.add_argument(
        "--wall",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="instead: time ROUNDS interleaved native drains of --large tasks per setting",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep callgrind's profiles in DIR (read them with callgrind_annotate)",
    )
    parser.add_argument("--drain", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fill", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain is not None:
        drain(args.drain, args.slowdown)
        return
    if args.fill is not None:
        fill(args.fill)
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
    sys.path.insert(0, str(ROOT))
    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    if args.wall:
        try:
            wall(server.url, list(SETTINGS) if args.split else list(MAIN), args.large, args.wall)
        finally:
            server.stop()
        return
    chosen = list(SETTINGS) if args.split else list(MAIN)
    per_task: dict[str, list[float]] = {s: [] for s in chosen}
    redis_us: dict[str, list[float]] = {s: [] for s in chosen}
    try:
        with tempfile.TemporaryDirectory(prefix="taskq-cost-") as scratch:
            tmp = args.keep or scratch
            Path(tmp).mkdir(parents=True, exist_ok=True)
            if args.native:
                for setting in chosen:
                    native(server.url, setting, args.large)
            for round_ in range(args.repeat):
                order = chosen if round_ % 2 == 0 else list(reversed(chosen))
                for setting in order:
                    small, _, _ = run_one(server.url, setting, args.small, Path(tmp), args.slowdown)
                    large, cpu, stats = run_one(
                        server.url, setting, args.large, Path(tmp), args.slowdown
                    )
                    per_task[setting].append((large - small) / (args.large - args.small))
                    redis_us[setting].append(cpu / args.large * 1e6)
                    print(
                        f"round {round_ + 1} {setting:>6}: "
                        f"{per_task[setting][-1]:,.0f} instructions/task, "
                        f"Redis {redis_us[setting][-1]:.1f} us/task ({stats})",
                        flush=True,
                    )
    finally:
        server.stop()
    off = statistics.median(per_task["off"])
    print()
    print("| setting | worker instructions/task (median) | Redis CPU us/task (median) |")
    print("|---|---|---|")
    for setting in chosen:
        print(
            f"| `{setting}` | {statistics.median(per_task[setting]):,.0f} | "
            f"{statistics.median(redis_us[setting]):.1f} |"
        )
    for setting in chosen[1:]:
        on = statistics.median(per_task[setting])
        print(f"{setting}: {on - off:+,.0f} instructions/task ({(on / off - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
