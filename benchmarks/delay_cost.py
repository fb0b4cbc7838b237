"""What one ``delay()`` costs the caller, in instructions, next to a raw ``EVALSHA``.

The producer goal (issue 11) is a ``delay()`` within 15 % of a raw redis-py
call of the same script. Timed on a shared 2-core machine, both move by
more than that between runs; counted by valgrind (callgrind's ``Ir``) they
do not. So one process, under ``valgrind --tool=callgrind``, sets Django up
(telemetry_cost.py's settings: events and counters on) and makes N calls
of one kind, for two N; the difference over the difference of the N is
what one call costs, with start-up and imports cancelled out:

- ``delay``: ``add.delay(i, i)``, everything a call does (signature check,
  envelope, encoding, the ``sent`` event, the pipeline of ``enqueue.lua``
  and the PENDING record, the publish deadline and retry wrapper);
- ``raw``: ``client.evalsha(...)`` of ``enqueue.lua`` with the keys and
  arguments one ``delay()`` passes (captured from a real call; a new once
  key each time), and nothing else.

    python benchmarks/delay_cost.py [--small 200] [--large 1200]

Needs valgrind and redis-server; takes about two minutes.
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
KINDS = ("delay", "raw")


def calls(kind: str, n: int) -> None:
    """The measured process: ``n`` calls of ``kind`` after one warm-up ``delay()``."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.telemetry_cost import configure, define_task

    configure()
    add = define_task()
    if kind == "delay":
        add.delay(0, 0)
        for i in range(n):
            add.delay(i, i)
        return
    client, sha, keys, args = _captured(add)
    once = keys[2].rsplit(":", 1)[0] + ":"
    call = client.evalsha
    for i in range(n):
        call(sha, len(keys), keys[0], keys[1], once + str(i), *keys[3:], *args)


def _captured(add: Any) -> tuple[Any, str, list[Any], list[Any]]:
    """The client, script sha, keys and arguments of one real ``delay()``'s EVALSHA."""
    from django_taskq.broker import scripts
    from django_taskq.broker.connection import get_broker

    seen: dict[str, list[Any]] = {}
    queue_evalsha = scripts.queue_evalsha

    def capture(pipe: Any, client: Any, name: str, keys: list[Any], args: list[Any]) -> Any:
        seen["keys"], seen["args"] = list(keys), list(args)
        return queue_evalsha(pipe, client, name, keys, args)

    scripts.queue_evalsha = capture  # type: ignore[assignment]
    try:
        add.delay(1, 1)
    finally:
        scripts.queue_evalsha = queue_evalsha  # type: ignore[assignment]
    client = get_broker()
    sha = client.script_load(scripts.source("enqueue"))
    return client, sha, seen["keys"], seen["args"]


def instructions(url: str, kind: str, n: int) -> int:
    """Instructions of one process making ``n`` calls of ``kind`` (callgrind's count)."""
    import redis

    redis.Redis.from_url(url).flushall()
    env = {**os.environ, "TASKQ_BROKER_URL": url, "TASKQ_EVENTS": "1", "TASKQ_METRICS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    me = str(Path(__file__).resolve())
    result = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
            *(sys.executable, me, "--calls", kind, str(n)),
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
    parser.add_argument("--calls", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls:
        calls(args.calls[0], int(args.calls[1]))
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
    sys.path.insert(0, str(ROOT))
    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    try:
        per_call = {}
        for kind in KINDS:
            small = instructions(server.url, kind, args.small)
            large = instructions(server.url, kind, args.large)
            per_call[kind] = (large - small) / (args.large - args.small)
    finally:
        server.stop()
    print("| call | instructions a call |")
    print("|---|---|")
    print(f"| `add.delay(i, i)` | {per_call['delay']:,.0f} |")
    print(f"| raw `EVALSHA` of enqueue.lua | {per_call['raw']:,.0f} |")
    print(f"\ndelay() / raw: {per_call['delay'] / per_call['raw']:.2f}")


if __name__ == "__main__":
    main()
