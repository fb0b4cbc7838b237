"""Serializers and compression on a 100 KB argument: ``python benchmarks/compression.py``.

For two realistic arguments of about 100 KB (a list of dicts of text and
numbers, as a report or an import batch holds, and a block of text, as an
e-mail or a page holds), and every serializer x compression, it measures:

- body bytes: ``len(envelope.encode(serializer, compression))``;
- encode + decode: µs of ``Envelope.encode`` and of ``Envelope.decode``
  (the fastest of 7 rounds that each time every case, in this process);
- delay(): µs per ``delay()`` call with TASKQ_TASK_SERIALIZER and
  TASKQ_COMPRESSION set to the case's, N calls one after another against a
  private redis-server;
- Redis memory per message: the growth of INFO ``used_memory`` over those N
  queued messages (the stream entry, its PENDING result record and its
  ``sent`` event), divided by N;
- drain: ms per task for a ``taskq_worker -P solo`` that starts after the N
  are queued and runs them with results stored (compressed with the same
  compression: TASKQ_RESULT_COMPRESSION), taken between the first and the
  last result's ``date_done`` as in django_taskq/bench.py;
- result bytes: the stored result record of one task (STRLEN).

The task is ``django_taskq.collect``, the built-in task that returns its
argument (a list), so every task stores a result as large as its argument.

Nothing needs to be set up: a private redis-server on a free port
(``django_taskq.testing.RedisServer``, never the Redis on 6379) and worker
subprocesses. This file is also the Django settings module of those workers
(``DJANGO_SETTINGS_MODULE=benchmarks.compression``, the checkout's root on
``PYTHONPATH``): importing it only defines the settings below.

    python benchmarks/compression.py                # N = 200 messages a case, 3 rounds
    python benchmarks/compression.py --messages 50 --repeat 1  # quicker
    python benchmarks/compression.py --json out.json

docs/benchmarks.md ("Serializers and compression") holds measured figures.
"""

from __future__ import annotations

import os
import tempfile

# -- settings (of this process and of the worker subprocesses) -----------------------------
SECRET_KEY = "django-taskq-codec-bench-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django_taskq"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(
            os.environ.get("TASKQ_BENCH_DIR") or tempfile.gettempdir(), "taskq-codecs.sqlite3"
        ),
    }
}
TASKQ_BROKER_URL = os.environ.get("TASKQ_BROKER_URL", "redis://127.0.0.1:1/0")
TASKQ_KEY_PREFIX = "taskqcodecs"
TASKQ_ACCEPT_CONTENT = ["json", "msgpack", "pickle", "zlib", "zstd"]
TASKQ_RESULT_COMPRESSION = os.environ.get("TASKQ_BENCH_RESULT_COMPRESSION") or None
TASKQ_HISTORY = False
SILENCED_SYSTEM_CHECKS = ["taskq.W002"]  # pickle is accepted here on purpose, for its rows


# -- the benchmark -------------------------------------------------------------------------
def main() -> int:
    import argparse
    import json
    import random
    import shutil
    import statistics
    import subprocess
    import sys
    import time
    import timeit
    from pathlib import Path
    from typing import Any

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages a combination")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    n = max(2, args.messages)
    root = Path(__file__).resolve().parent.parent
    workdir = Path(tempfile.mkdtemp(prefix="taskq-codecs-"))

    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.compression"
    os.environ["TASKQ_BROKER_URL"] = server.url
    os.environ["TASKQ_BENCH_DIR"] = str(workdir)
    sys.path.insert(0, str(root))
    import django

    django.setup()
    from django.test import override_settings

    from django_taskq import codecs
    from django_taskq.broker import keys
    from django_taskq.builtins import collect
    from django_taskq.messages import Envelope, loads

    client = server.client()

    def log(message: str) -> None:
        print(f"codecs bench: {message}", file=sys.stderr, flush=True)

    def records(size: int) -> list[dict[str, Any]]:
        """Order lines: ids, words, prices, dates; about ``size`` bytes of JSON."""
        rng = random.Random(1)
        words = [
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
            for _ in range(2000)
        ]
        out: list[dict[str, Any]] = []
        length = 2
        while length < size:
            row = {
                "id": 100_000 + len(out),
                "sku": f"SKU-{rng.randint(0, 99999):05d}",
                "name": " ".join(rng.choice(words) for _ in range(rng.randint(2, 5))),
                "qty": rng.randint(1, 40),
                "price": round(rng.uniform(0.5, 900), 2),
                "created": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
                "paid": rng.random() < 0.8,
            }
            out.append(row)
            length += len(json.dumps(row, separators=(",", ":"))) + 1
        return out

    def text(size: int) -> list[str]:
        """Sentences of a 300-word vocabulary (as a letter or a page reads): ``size`` chars."""
        rng = random.Random(2)
        words = [
            "".join(rng.choice("etaoinshrdlucmfwyp") for _ in range(rng.randint(2, 10)))
            for _ in range(300)
        ]
        parts: list[str] = []
        length = 0
        while length < size:
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 18))) + ". "
            parts.append(sentence.capitalize())
            length += len(sentence)
        return ["".join(parts)[:size]]

    payloads = {"records": records(100_000), "text": text(100_000)}
    combos = [(s, c) for s in ("json", "msgpack", "pickle") for c in (None, "zlib", "zstd")]

    def best_us(func: Any, number: int = 10) -> float:
        return min(timeit.repeat(func, number=number, repeat=3)) / number * 1e6

    def worker_env(compression: str | None) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return {
            **os.environ,
            "PYTHONPATH": str(root) + (os.pathsep + path if path else ""),
            "TASKQ_BENCH_RESULT_COMPRESSION": compression or "",
            "PYTHONUNBUFFERED": "1",
        }

    def drain(ids: list[str], compression: str | None) -> tuple[float, float]:
        """ms per task between the first and last date_done; seconds from spawn to the last."""
        logfile = workdir / "worker.log"
        cmd = [sys.executable, "-m", "django", "taskq_worker", "-P", "solo", "-l", "WARNING"]
        spawned = time.time()
        with open(logfile, "ab") as out:
            worker = subprocess.Popen(
                cmd, cwd=root, env=worker_env(compression), stdout=out, stderr=subprocess.STDOUT
            )
        try:
            names = [keys.result(i) for i in ids]
            while True:
                if worker.poll() is not None:
                    raise RuntimeError("worker exited:\n" + logfile.read_text()[-3000:])
                raws = client.mget(names)
                done = [loads(r) for r in raws if r is not None]
                if len(done) == len(ids) and all(d["status"] == "SUCCESS" for d in done):
                    break
                time.sleep(0.05)
        finally:
            worker.terminate()
            worker.wait(30)
        stamps = sorted(float(d["date_done"]) for d in done)
        return (stamps[-1] - stamps[0]) / (len(ids) - 1) * 1000, stamps[-1] - spawned

    accept = TASKQ_ACCEPT_CONTENT
    cases = [(p, s, c) for p in payloads for s, c in combos]
    figures: dict[tuple[str, str, str | None], dict[str, Any]] = {
        case: {"drain_ms": [], "delay_us": [], "redis": [], "wall": []} for case in cases
    }
    # Redis and the worker: each case once a round, the rounds one after another,
    # so a burst of load on a shared machine lands on one round of every case.
    for round_ in range(args.repeat):
        for payload_name, serializer, compression in cases:
            payload = payloads[payload_name]
            found = figures[(payload_name, serializer, compression)]
            client.flushall()
            used = int(client.info("memory")["used_memory"])
            ids: list[str] = []
            # As a project sets it: the settings (a per-call serializer would
            # still check the arguments as JSON at build time, for a JSON task).
            with override_settings(TASKQ_TASK_SERIALIZER=serializer, TASKQ_COMPRESSION=compression):
                started = time.perf_counter()
                for _ in range(n):
                    ids.append(collect.delay(payload).id)
                found["delay_us"].append((time.perf_counter() - started) / n * 1e6)
            found["redis"].append((int(client.info("memory")["used_memory"]) - used) / n)
            log(f"round {round_ + 1}: {payload_name} {serializer}+{compression}: draining")
            drain_ms, wall = drain(ids, compression)
            found["drain_ms"].append(drain_ms)
            found["wall"].append(wall)
            raw_result = client.get(keys.result(ids[0]))
            assert raw_result is not None and loads(raw_result)["result"] == payload
            found["result_bytes"] = len(raw_result)
            found["raw_result"] = raw_result
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    # In-process timings: the fastest of 7 rounds, every case in each round.
    for _ in range(7):
        for case in cases:
            payload_name, serializer, compression = case
            found = figures[case]
            envelope = collect.build_envelope((payloads[payload_name],))
            body = envelope.encode(serializer, compression)
            found["body_bytes"] = len(body)
            timings = {
                "encode_us": best_us(
                    lambda e=envelope, s=serializer, c=compression: e.encode(s, c)
                ),
                "decode_us": best_us(lambda b=body, a=accept: Envelope.decode(b, a)),
                "result_decode_us": best_us(lambda r=found["raw_result"]: loads(r)),
            }
            for name, value in timings.items():
                found[name] = min(value, found.get(name, value))

    rows: list[dict[str, Any]] = []
    for (payload_name, serializer, compression), found in figures.items():
        rows.append(
            {
                "payload": payload_name,
                "argument_json_bytes": len(
                    json.dumps(payloads[payload_name], separators=(",", ":"))
                ),
                "serializer": serializer,
                "compression": compression or "none",
                "body_bytes": found["body_bytes"],
                "encode_us": round(found["encode_us"], 1),
                "decode_us": round(found["decode_us"], 1),
                "delay_us": round(statistics.median(found["delay_us"]), 1),
                "redis_bytes_per_message": round(statistics.median(found["redis"])),
                "drain_ms_per_task": round(statistics.median(found["drain_ms"]), 3),
                "drain_wall_s": round(statistics.median(found["wall"]), 2),
                "result_bytes": found["result_bytes"],
                "result_decode_us": round(found["result_decode_us"], 1),
                "runs": {k: found[k] for k in ("delay_us", "redis", "drain_ms")},
            }
        )

    header = (
        f"{'payload':8} {'codec':15} {'body B':>8} {'enc µs':>8} {'dec µs':>8} {'delay µs':>9} "
        f"{'Redis B/msg':>11} {'drain ms':>9} {'result B':>9} {'res dec µs':>10}"
    )
    print(
        f"{n} messages a combination, {args.repeat} rounds (medians); encode/decode: the "
        f"fastest of 7 rounds; codecs {codecs.SERIALIZERS} x none, {codecs.COMPRESSIONS}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['payload']:8} {r['serializer'] + '+' + r['compression']:15} "
            f"{r['body_bytes']:>8} {r['encode_us']:>8} {r['decode_us']:>8} {r['delay_us']:>9} "
            f"{r['redis_bytes_per_message']:>11} {r['drain_ms_per_task']:>9} "
            f"{r['result_bytes']:>9} {r['result_decode_us']:>10}"
        )
    if args.json:
        info = {
            "messages": n,
            "repeat": args.repeat,
            "python": sys.version.split()[0],
            "loadavg_after": os.getloadavg(),
        }
        Path(args.json).write_text(json.dumps({"run": info, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
