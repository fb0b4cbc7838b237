"""Benchmark: many periodic runs due at the same instant, and how late each one is.

Run from the repository root (it starts its own redis-server and database)::

    python -m tests.beat.burst                      # 10,000 runs, 5 bursts, SQLite
    python -m tests.beat.burst --workers 2          # also run them: when does each start?
    python -m tests.beat.burst --db postgres --json burst.json
    python -m tests.beat.burst --topology cluster --queues 8   # a local 3-master Redis Cluster

N periodic tasks (``tests.testapp.tasks.stamp``) share an interval of
``--period`` seconds and a last run one period before a whole second T0, so
all N are due at exactly T0, T0 + period, ... (with ``--spread MS`` their due
times are spread evenly over the MS milliseconds from T0 instead). With
``--queues Q`` the tasks are sent to Q queues in turn (on a Cluster each
queue lives in its own slot, so its delayed set is promoted by its master). A real ``taskq_beat``
subprocess sends them (``--send-ahead`` sets TASKQ_BEAT_SEND_AHEAD for it).
For every run it measures, relative to the run's due time:

- **fetchable**: when the message is in a ready stream, so that a worker's
  XREADGROUP can return it. A probe thread blocks in XREAD on the queue's
  ten streams for one new entry, then reads the stream's last entry id and
  stamps the time: everything up to that id was readable by then (an upper
  bound, off by the probe's wake-up and one round trip);
- **stream id**: the stream entry id, i.e. Redis's clock when XADD ran (a
  lower bound: a message added inside a Lua call is visible only when the
  call ends, up to one promotion call later);
- **started** (with ``--workers``): when a worker started the task (the task
  stamps time.time() first thing). This includes the workers' throughput:
  10,000 tasks on a 2-core machine take seconds to run, whatever beat does.

It prints p50 / p99 / max per burst, then the median of each over the
bursts. Nothing here asserts a time: these are figures to read, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "default"
STAMP_KEY = "burst:started"


@dataclass
class Probe:
    """Notes when the entries of the queue's streams become readable, at little cost.

    It blocks in XREAD for one new entry, then asks for the stream's last
    entry and stamps the time after that reply: every entry up to that one
    was readable by then (an upper bound, off by one round trip). Reading
    whole replies of a thousand bodies in Python would take a core from
    the Redis it measures; the entries are read after the run instead.
    """

    client: Any
    streams: list[str]
    marks: list[tuple[float, str, bytes]] = field(default_factory=list)  # (time, stream, tail id)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Probe:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        last: dict[str, Any] = dict.fromkeys(self.streams, "0-0")
        while not self.stop.is_set():
            reply = self.client.xread(last, count=1, block=200)
            for stream, _entries in reply or []:
                name = stream.decode() if isinstance(stream, bytes) else stream
                tail = self.client.xrevrange(name, count=1)
                seen = time.time()
                if tail:
                    self.marks.append((seen, name, tail[0][0]))
                    last[name] = tail[0][0]


def _id_key(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "min": ordered[0],
        "p50": at(0.50),
        "p99": at(0.99),
        "max": ordered[-1],
    }


def _create_tasks(count: int, period: int, t0: float, spread_ms: int, queues: list[str]) -> None:
    from django_taskq.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(every=period, period="seconds")
    last = dt.datetime.fromtimestamp(t0 - period, dt.UTC)
    rows = [
        PeriodicTask(
            name=f"burst-{i:05d}",
            task="tests.testapp.tasks.stamp",
            args=[STAMP_KEY],
            interval=interval,
            queue=queues[i % len(queues)],
            last_run_at=last + dt.timedelta(milliseconds=i * spread_ms // count),
        )
        for i in range(count)
    ]
    PeriodicTask.objects.bulk_create(rows, batch_size=1000)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


class Output:
    """Collects a subprocess's output lines (so its pipe never fills)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"no {text!r} in output:\n" + "\n".join(self.lines[-50:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def _id_and_due(body: bytes) -> tuple[str, float | None]:
    data = json.loads(body)
    due = (data.get("headers") or {}).get("periodic_task_due")
    return str(data.get("id")), dt.datetime.fromisoformat(due).timestamp() if due else None


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from django_taskq.testing import RedisServer
    from tests.beat.loadtest import _setup

    server: Any
    if args.topology == "cluster":
        from django_taskq.testing_topologies import ClusterServers

        server = ClusterServers(masters=args.masters).start()
    else:
        server = RedisServer().start()
    try:
        _setup(args.db, server.url)
        from django_taskq.broker import keys
        from django_taskq.broker.connection import get_broker

        client = get_broker()
        queues = [QUEUE] if args.queues == 1 else [f"burst{q}" for q in range(args.queues)]
        t0 = math.ceil(time.time()) + args.lead
        _create_tasks(args.tasks, args.period, t0, args.spread, queues)
        # One probe per queue: a queue's streams share a slot, queues need not.
        probes = [
            Probe(get_broker(), [keys.stream(q, p) for p in range(10)]).start() for q in queues
        ]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.beat.beat_settings",
            "PYTHONUNBUFFERED": "1",
        }
        if args.send_ahead is not None:
            env["TASKQ_TEST_SEND_AHEAD"] = str(args.send_ahead)
        beat = Output(_spawn(["taskq_beat", "--hostname", "burst-beat"], env))
        worker_args = ["taskq_worker", "-Q", ",".join(queues), "-P", "prefork", "-c", "2"]
        worker_args += ["-l", "WARNING"]
        workers = [
            Output(_spawn([*worker_args, "-n", f"burst-{i}"], env)) for i in range(args.workers)
        ]
        try:
            beat.wait_for(f"loaded {args.tasks} periodic tasks")
            if time.time() > t0 - 3:
                print(f"warning: beat loaded only {t0 - time.time():.1f}s before the first burst")
            bursts = []
            for k in range(args.bursts):
                due = t0 + k * args.period
                # Every run of this burst is in the streams (or a worker ran it) by then.
                deadline = due + args.period * 0.75
                while time.time() < deadline:
                    time.sleep(0.1)
                bursts.append(due)
        finally:
            beat.stop()
            for worker in workers:
                worker.stop()
            for probe in probes:
                probe.stop.set()
            if args.beat_log:
                Path(args.beat_log).write_text("\n".join(beat.lines) + "\n")
        by_burst: dict[int, dict[str, list[float]]] = {
            k: {"fetchable": [], "stream_id": [], "started": []} for k in range(len(bursts))
        }

        def burst_of(due_s: float) -> int | None:
            k = int((due_s - t0) // args.period)
            return k if k in by_burst else None

        # Every entry still in the streams (workers delete what they finish,
        # so with --workers only the started times are complete).
        seen_ids: set[str] = set()
        for stream, marks in (
            (stream, [(t, tail) for t, name, tail in probe.marks if name == stream])
            for probe in probes
            for stream in probe.streams
        ):
            index = 0
            for entry_id, fields in client.xrange(stream):
                task_id, due_s = _id_and_due(fields[b"b"])
                if task_id in seen_ids:
                    continue  # given back by a stopping worker: not a new arrival
                seen_ids.add(task_id)
                k = burst_of(due_s) if due_s is not None else None
                if due_s is None or k is None:
                    continue
                while index < len(marks) and _id_key(marks[index][1]) < _id_key(entry_id):
                    index += 1
                if index < len(marks):
                    by_burst[k]["fetchable"].append((marks[index][0] - due_s) * 1000)
                added_ms = int(entry_id.split(b"-")[0])
                by_burst[k]["stream_id"].append(added_ms - due_s * 1000)
        for raw in client.lrange(STAMP_KEY, 0, -1):
            started_s, due_text, _name = raw.decode().split(" ", 2)
            due_s = dt.datetime.fromisoformat(due_text).timestamp()
            k = burst_of(due_s)
            if k is not None:
                by_burst[k]["started"].append((float(started_s) - due_s) * 1000)
        result = {
            "beat_log": [line for line in beat.lines if "sent" in line or "due before" in line],
            "tasks": args.tasks,
            "bursts": [
                {name: percentiles(values) for name, values in by_burst[k].items()}
                for k in range(len(bursts))
            ],
        }
        return result
    finally:
        server.close()


def _row(label: str, stats: dict[str, float]) -> str:
    if not stats.get("n"):
        return f"  {label:<10} (none)"
    return (
        f"  {label:<10} n={int(stats['n']):>6}  min {stats['min']:7.1f}  "
        f"p50 {stats['p50']:8.1f}  p99 {stats['p99']:8.1f}  max {stats['max']:8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--period", type=int, default=20, help="seconds between bursts")
    parser.add_argument("--lead", type=int, default=25, help="seconds from start to burst 1")
    parser.add_argument("--workers", type=int, default=0, help="prefork -c 2 workers to start")
    parser.add_argument("--send-ahead", type=float, default=None, help="TASKQ_BEAT_SEND_AHEAD")
    parser.add_argument(
        "--spread", type=int, default=0, metavar="MS", help="spread due times over MS ms"
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--topology", choices=["single", "cluster"], default="single")
    parser.add_argument("--masters", type=int, default=3, help="Cluster masters (1 replica each)")
    parser.add_argument("--queues", type=int, default=1, help="queues the tasks are spread over")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--beat-log", metavar="FILE", help="write beat's output to FILE")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    result = measure(args)
    result["machine"] = f"{platform.python_version()} on {os.cpu_count()} CPUs"
    result["load_average"] = os.getloadavg()
    when = f"within {args.spread} ms" if args.spread else "at the same instant"
    where = f"{args.topology}, {args.queues} queue(s)"
    print(f"{args.tasks} runs due {when}, {args.bursts} bursts ({args.db}, {where})")
    for i, burst in enumerate(result["bursts"], 1):
        print(f"burst {i}:")
        for name, stats in burst.items():
            print(_row(name, stats))
    medians: dict[str, dict[str, float]] = {}
    for name in ("fetchable", "stream_id", "started"):
        rows = [b[name] for b in result["bursts"] if b[name].get("n")]
        if rows:
            medians[name] = {
                key: statistics.median(r[key] for r in rows)
                for key in ("n", "min", "p50", "p99", "max")
            }
    result["median_of_bursts"] = medians
    print("median over bursts:")
    for name, stats in medians.items():
        print(_row(name, stats))
    print(f"load average at the end: {result['load_average']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
