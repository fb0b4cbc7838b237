"""What Redis spends to promote a burst of periodic runs sent ahead: the floor of burst lateness.

Run from the repository root (it starts its own redis-server)::

    python -m tests.beat.promotion_cost [--runs 10000] [--repeat 5]

In this process (no beat subprocess, no database), it sends ``--runs`` runs
of ``tests.testapp.tasks.stamp`` due at one instant two seconds ahead, the
way the beat leader does (``dispatch.send_runs`` in batches of 500, so the
delayed set, once keys and PENDING records lie in Redis's memory as they
would), waits for the due time, and promotes them with
``broker.delayed.promote`` as the leader does. It reports, from Redis's
``INFO commandstats``, the server time of the promotion (all promote.lua
calls) and of the commands inside it, and the wall time from the due
instant to the last message in its stream. Medians over ``--repeat``
bursts. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    from django_taskq.testing import RedisServer

    server = RedisServer().start()
    try:
        os.environ["TASKQ_BROKER_URL"] = server.url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        import django

        django.setup()
        figures = [burst(args.runs) for _ in range(args.repeat)]
    finally:
        server.close()
    print(f"{args.runs} runs due at one instant, promoted by one client ({args.repeat} bursts)")
    for name in figures[0]:
        values = [f[name] for f in figures]
        print(
            f"  {name:<28} median {statistics.median(values):8.1f}   "
            + " ".join(f"{v:.1f}" for v in values)
        )


def burst(count: int) -> dict[str, float]:
    from django_taskq.beat.dispatch import Run, send_runs
    from django_taskq.beat.entry import RunOptions
    from django_taskq.broker import delayed, keys
    from django_taskq.broker.connection import get_broker

    client = get_broker()
    client.flushall()
    due_s = math.ceil(time.time()) + 2
    due = dt.datetime.fromtimestamp(due_s, dt.UTC)
    runs = [
        Run(
            RunOptions(
                periodic_task_id=i,
                name=f"burst-{i:05d}",
                task="tests.testapp.tasks.stamp",
                args=["burst:started"],
            ),
            due,
        )
        for i in range(count)
    ]
    for start in range(0, count, 500):
        send_runs(runs[start : start + 500], client)
    while time.time() < due_s:
        time.sleep(0.0005)
    client.config_resetstat()
    backlog = True
    while backlog:
        backlog, _next = delayed.promote(client, "default")
    stats = client.info("commandstats")
    streams = [keys.stream("default", p) for p in range(10)]
    last_ms = max(
        int(client.xrevrange(s, count=1)[0][0].split(b"-")[0]) for s in streams if client.xlen(s)
    )

    def server_ms(command: str) -> float:
        return float(stats.get(f"cmdstat_{command}", {}).get("usec", 0)) / 1000

    return {
        "promotion, Redis ms": server_ms("evalsha"),
        "  of which XADD ms": server_ms("xadd"),
        "  of which ZRANGEBYSCORE ms": server_ms("zrangebyscore"),
        "  of which ZREMRANGEBYRANK ms": server_ms("zremrangebyrank"),
        "Redis us per message": server_ms("evalsha") * 1000 / count,
        "last in its stream, ms late": last_ms - due_s * 1000,
    }


if __name__ == "__main__":
    main()
