"""What the ``received`` entry costs Redis: fetch.lua's time per message, with it and without.

With task events on, each fetch.lua call appends one entry to the queue's
events stream for its whole batch (RECEIVED in the history). This fills a
private redis-server's stream with queued messages shaped like the ones
django_taskq writes (fields ``i``, ``b`` of 300 bytes, ``dc``), drains them
with fetch.lua at a few batch sizes, with and without the received entry,
and reads Redis's own time in the script from ``INFO commandstats`` (the
server's microseconds, not the client's round trips). Each setting runs
``--repeat`` times, interleaved; the best is reported.

    python benchmarks/fetch_received_cost.py [--messages 51200] [--repeat 2]

Needs redis-server; takes under a minute. The worker's side is counted by
benchmarks/telemetry_cost.py.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "django_taskq" / "broker" / "lua" / "fetch.lua"
STREAM, REVOKED, EVENTS = "{bench}:s", "{bench}:revoked", "{bench}:events"


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], redis.Redis]:
    sock = Path(folder) / "redis.sock"
    args = ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", ""]
    proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(sock))
    for _ in range(200):
        try:
            client.ping()
            return proc, client
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("redis-server did not start")


def fill(client: redis.Redis, n: int) -> None:
    client.flushall()
    client.xgroup_create(STREAM, "g", id="0", mkstream=True)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(STREAM, {"i": f"{i:08d}-2b1c-4f5e-9a0d-3c4b5a6f7e8d", "b": "x" * 300, "dc": 0})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def drain(client: redis.Redis, fetch: object, batch: int, received: bool) -> float:
    """Fetch until the stream is empty; Redis's microseconds in the script per message."""
    names = [REVOKED, STREAM, *([EVENTS] if received else [])]
    # ARGV[5..]: maxlen (0: no received entry), worker, then the one queue's stream count.
    extra = [100_000, "bench@host", 1] if received else [0, "", 1]
    client.config_resetstat()
    got = 0
    while True:
        now_ms = int(time.time() * 1000)
        out = fetch(keys=names, args=["g", "c", batch, now_ms, *extra])  # type: ignore[operator]
        if not out:
            break
        got += len(out) // 6
    stats = client.info("commandstats")
    spent = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    return spent / max(got, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=51_200)
    parser.add_argument("--repeat", type=int, default=2)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        proc, client = start_redis(folder)
        try:
            fetch = client.register_script(SCRIPT.read_text())
            print("| batch | without (µs/message) | with the received entry | more |")
            print("|---|---|---|---|")
            for batch in (256, 16, 1):
                n = options.messages if batch > 1 else options.messages // 5
                best: dict[bool, float] = {}
                for _ in range(options.repeat):
                    for received in (False, True):
                        fill(client, n)
                        spent = drain(client, fetch, batch, received)
                        best[received] = min(best.get(received, spent), spent)
                more = best[True] - best[False]
                print(f"| {batch} | {best[False]:.2f} | {best[True]:.2f} | +{more:.2f} |")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
