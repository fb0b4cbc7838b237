"""What the fault tests read from Redis and from /proc, and how they wait.

Broker state is read only through ``django_taskq.broker.keys`` (and
``django_taskq.control``), in this one module, because the key layout is
about to change (per-queue delayed sets and dead letters, hash tags): when
it does, these few functions are what needs adapting, not every test.

Tests synchronise on events with a deadline (``wait_until``), never on a
bare sleep before an assertion.
"""

from __future__ import annotations

import inspect
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import redis

from django_taskq.broker import keys
from tests.processes import pool_children


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is truthy; False once ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _maybe_per_queue(func: Callable[..., str], queue: str) -> str:
    """``func(queue)`` if the keys function takes a queue (new layout), else ``func()``."""
    return func(queue) if inspect.signature(func).parameters else func()


# -- broker state ---------------------------------------------------------------
def queue_streams(queue: str = "default") -> list[str]:
    """Every ready stream of ``queue`` (one per priority)."""
    return keys.streams_for([queue])


def pending(client: redis.Redis, queue: str = "default") -> int:
    """Messages delivered to a consumer and not acked (XPENDING), on every stream of ``queue``."""
    total = 0
    for stream in queue_streams(queue):
        try:
            summary: Any = client.xpending(stream, keys.GROUP)
        except redis.ResponseError:  # no such stream or group: nothing pending there
            continue
        total += int(summary["pending"])
    return total


def pending_detail(client: redis.Redis, queue: str = "default", count: int = 20) -> list[str]:
    """Up to ``count`` pending entries as "consumer idle=<s> deliveries=<n>" (to diagnose)."""
    out: list[str] = []
    for stream in queue_streams(queue):
        try:
            rows: Any = client.xpending_range(stream, keys.GROUP, "-", "+", count)
        except redis.ResponseError:
            continue
        for row in rows:
            consumer = row["consumer"].decode(errors="replace")
            idle = row["time_since_delivered"] / 1000
            out.append(f"{consumer} idle={idle:.1f}s deliveries={row['times_delivered']}")
    return out[:count]


def history_behind(client: redis.Redis, queue: str = "default") -> int | None:
    """Events of ``queue`` the history recorder has not recorded yet (lag + pending).

    None when its consumer group does not exist (no recorder ever ran).
    """
    from django_taskq.history.reader import GROUP

    try:
        groups: Any = client.xinfo_groups(keys.events(queue))
    except redis.ResponseError:
        return None
    for group in groups:
        name = group["name"]
        if (name.decode() if isinstance(name, bytes) else name) == GROUP:
            return int(group.get("lag") or 0) + int(group["pending"])
    return None


def stream_entries(client: redis.Redis, queue: str = "default") -> int:
    """Entries still in the streams of ``queue`` (waiting or pending)."""
    return sum(int(client.xlen(stream)) for stream in queue_streams(queue))


def delayed(client: redis.Redis, queue: str = "default") -> int:
    """Messages waiting for their ETA."""
    return int(client.zcard(_maybe_per_queue(keys.delayed, queue)))


def dead_letters(queue: str = "default", count: int = 100_000) -> list[dict[str, str]]:
    """Dead letters (fields decoded with errors="replace"), newest first."""
    from django_taskq import control

    if "queue" in inspect.signature(control.dead_letters).parameters:
        return control.dead_letters(count, queue=queue)  # type: ignore[call-arg]
    return control.dead_letters(count)


def dead_letter_count(client: redis.Redis, queue: str = "default") -> int:
    return int(client.xlen(_maybe_per_queue(keys.dead, queue)))


def result_states(client: redis.Redis, ids: list[str], chunk: int = 1000) -> dict[str, str | None]:
    """The stored state of each task id (None: no result record), in few round trips."""
    import json

    states: dict[str, str | None] = {}
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        names = [keys.result(i) for i in part]
        # On Redis Cluster the records live in many slots: one MGET per slot.
        mget = getattr(client, "mget_nonatomic", client.mget)
        for task_id, raw in zip(part, mget(names), strict=True):
            states[task_id] = json.loads(raw)["status"] if raw else None
    return states


def used_memory(client: redis.Redis) -> int:
    info: Any = client.info("memory")
    return int(info["used_memory"])


# -- processes --------------------------------------------------------------------
def children(pid: int) -> list[int]:
    return pool_children(pid)


def rss_kib(pids: list[int]) -> int:
    """Total resident memory of ``pids`` (VmRSS from /proc), in KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except FileNotFoundError:
            continue
    return total


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``, from /proc.

    Zombies do not count: a killed child reparented to PID 1 may stay one
    for a while in a container whose PID 1 reaps late.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces, so split after ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def describe(pid: int) -> str:
    """``pid (comm) state ppid``: what a leftover process was, for a failure message."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return f"{pid} (gone)"
    head, _, rest = stat.rpartition(")")
    fields = rest.split()
    return f"{head}) state {fields[0]} ppid {fields[1]}"


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- workers ------------------------------------------------------------------------
def wait_children(worker: Any, count: int, timeout: float = 30) -> list[int]:
    """Wait until the prefork worker has ``count`` children; return their pids, sorted.

    (The parent says "ready" before it forks them.)
    """
    found: list[int] = []

    def enough() -> bool:
        nonlocal found
        found = sorted(worker.children())
        return len(found) == count

    if not wait_until(enough, timeout):
        raise AssertionError(f"worker has children {found}, not {count}:\n{worker.output}")
    return found


#: Output that means a consumer died or crashed.
DEATH_MARKS = ("died", "failed; its messages are redelivered", "Traceback")


def death_lines(worker: Any) -> list[str]:
    return [line.rstrip() for line in list(worker.lines) if any(m in line for m in DEATH_MARKS)]


def death_report(worker: Any, *, lines_after: int = 40) -> str:
    """The first death line with the line before it and the traceback after it.

    For an assertion message: a failure seen once on CI must say where it
    came from (the line before a traceback names its thread or logger).
    """
    lines = [line.rstrip() for line in list(worker.lines)]
    for at, line in enumerate(lines):
        if any(m in line for m in DEATH_MARKS):
            return "\n".join(lines[max(at - 1, 0) : at + lines_after])
    return ""
