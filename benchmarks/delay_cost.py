"""What one ``delay()`` costs the caller, in instructions, next to a raw ``EVALSHA``.

The producer goal (issue 11) is a ``delay()`` within 15 % of a raw redis-py
call of the same script. Timed on a shared 2-core machine, both move by
more than that between runs; counted by valgrind (callgrind's ``Ir``) they
do not. So one process, under ``valgrind --tool=callgrind``, sets Django up
(telemetry_cost.py's settings: events and counters on) and makes N calls
of one kind, for two N; the difference over the difference of the N is
what one call costs, with start-up and imports cancelled out:

- ``add.delay(i, i)``, ``apply_async(countdown=60)`` and
  ``apply_async(ignore_result=True)``: everything a call does (signature
  check, envelope, encoding, the ``sent`` event, the ``enqueue.lua`` call
  that also writes the PENDING record, the publish deadline and retry
  wrapper);
- beside each, the raw ``client.evalsha(...)`` of ``enqueue.lua`` with the
  keys and arguments that call passes (captured from a real call; a new
  once key each time), and nothing else.

    python benchmarks/delay_cost.py [--small 200] [--large 1200] [--kinds delay ...]

Needs valgrind and redis-server; takes about two minutes a kind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: What is measured: the call, and the raw EVALSHA it is compared with.
MODES = ("taskq", "raw")
#: The calls: a plain ``delay()``, a countdown, and a task whose result is ignored.
KINDS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "delay": ((), {}),
    "countdown": ((), {"countdown": 60}),
    "ignore_result": ((), {"ignore_result": True}),
}


def calls(mode: str, kind: str, n: int) -> None:
    """The measured process: ``n`` calls of ``kind`` after one warm-up call."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.telemetry_cost import configure, define_task

    configure()
    add = define_task()
    options = KINDS[kind][1]
    if mode == "taskq":
        if not options:
            add.delay(0, 0)
            for i in range(n):
                add.delay(i, i)
            return
        send = add.apply_async
        send((0, 0), **options)
        for i in range(n):
            send((i, i), **options)
        return
    client, sha, keys, args = _captured(add, options)
    once = keys[2].rsplit(":", 1)[0] + ":"
    call = client.evalsha
    for i in range(n):
        call(sha, len(keys), keys[0], keys[1], once + str(i), *keys[3:], *args)


def _captured(add: Any, options: dict[str, Any]) -> tuple[Any, str, list[Any], list[Any]]:
    """The client, script sha, keys and arguments of one real call's EVALSHA."""
    from django_taskq.broker import publish, scripts
    from django_taskq.broker.connection import get_broker

    seen: dict[str, list[Any]] = {}
    enqueue_call = publish.enqueue_call

    def capture(*args: Any, **kwargs: Any) -> Any:
        found = enqueue_call(*args, **kwargs)
        seen["keys"], seen["args"] = list(found[0]), list(found[1])
        return found

    add.apply_async((1, 1), **options)  # the queue's registration goes first
    publish.enqueue_call = capture  # type: ignore[assignment]
    try:
        add.apply_async((1, 1), **options)
    finally:
        publish.enqueue_call = enqueue_call  # type: ignore[assignment]
    client = get_broker()
    sha = client.script_load(scripts.source("enqueue"))
    return client, sha, seen["keys"], seen["args"]


def instructions(url: str, mode: str, kind: str, n: int) -> int:
    """Instructions of one process making ``n`` calls of ``kind`` (callgrind's count)."""
    import redis

    redis.Redis.from_url(url).flushall()
    env = {**os.environ, "TASKQ_BROKER_URL": url, "TASKQ_EVENTS": "1", "TASKQ_METRICS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    me = str(Path(__file__).resolve())
    result = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
            *(sys.executable, me, "--calls", mode, kind, str(n)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument(
        "--kinds", nargs="+", choices=list(KINDS), default=list(KINDS), help="calls to measure"
    )
    parser.add_argument("--calls", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls:
        calls(args.calls[0], args.calls[1], int(args.calls[2]))
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
    sys.path.insert(0, str(ROOT))
    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    per_call: dict[tuple[str, str], float] = {}
    try:
        for kind in args.kinds:
            for mode in MODES:
                small = instructions(server.url, mode, kind, args.small)
                large = instructions(server.url, mode, kind, args.large)
                per_call[mode, kind] = (large - small) / (args.large - args.small)
    finally:
        server.stop()
    labels = {
        "delay": "`add.delay(i, i)`",
        "countdown": "`add.apply_async((i, i), countdown=60)`",
        "ignore_result": "`add.apply_async((i, i), ignore_result=True)`",
    }
    print("| call | instructions a call | raw `EVALSHA` of enqueue.lua | ratio |")
    print("|---|---|---|---|")
    for kind in args.kinds:
        mine, raw = per_call["taskq", kind], per_call["raw", kind]
        print(f"| {labels[kind]} | {mine:,.0f} | {raw:,.0f} | {mine / raw:.2f} |")


if __name__ == "__main__":
    main()
