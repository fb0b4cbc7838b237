"""Live state of the workers, read from Redis: what the admin's Workers page and inspect show.

Every worker rewrites its description with each heartbeat (worker/heartbeat.py):
host, pid, pool, concurrency, queues, start time, load average and the tasks
it runs now with their start times. Nothing here asks a worker anything, so
reading it costs a few Redis reads and works while workers are busy, stuck
or gone. A worker that has not beaten within TASKQ_WORKER_HEARTBEAT_TIMEOUT
is offline; it stays listed, offline, until TASKQ_WORKER_FORGET_AFTER has
passed since its last beat (the housekeeping of any live worker prunes it).

Processed and failed counts come from the task counters
(``metrics/counters.py``), summed over every queue for the worker's hostname:
they survive restarts of the worker, and workers started with the same
``-n`` share them, as they share a name in Prometheus.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from django_taskq.broker import keys
from django_taskq.broker import queues as queue_registry
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.conf import taskq_settings
from django_taskq.metrics import counters
from django_taskq.safe_text import encodable_json

#: Counters that end a delivery: "processed" is their sum.
PROCESSED = counters.ENDINGS
#: Counters of deliveries that ended in a failure (dead-lettered ones included).
FAILED = (counters.FAILED, counters.REJECTED)


@dataclass(frozen=True)
class RunningTask:
    """A task a worker runs now."""

    task_id: str
    task: str
    started: float  # epoch seconds

    @property
    def runtime(self) -> float:
        """Seconds it has run so far."""
        return max(0.0, time.time() - self.started)


@dataclass(frozen=True)
class WorkerState:
    """One worker (a ``taskq_worker`` process) as its last heartbeat described it."""

    name: str  # unique: "<hostname>:<pid>:<start token>"
    hostname: str  # "taskq@host", or -n
    pid: int
    pool: str
    concurrency: int
    queues: list[str]
    started: float  # epoch seconds
    last_beat: float  # epoch seconds
    online: bool
    running: list[RunningTask]
    load: tuple[float, float, float] | None
    processed: int
    failed: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``taskq_inspect --json``, the admin's refresh)."""
        return {
            "name": self.name,
            "hostname": self.hostname,
            "pid": self.pid,
            "pool": self.pool,
            "concurrency": self.concurrency,
            "queues": list(self.queues),
            "started": self.started,
            "last_beat": self.last_beat,
            "online": self.online,
            "running": [
                {"task_id": r.task_id, "task": r.task, "started": r.started, "runtime": r.runtime}
                for r in self.running
            ],
            "load": list(self.load) if self.load is not None else None,
            "processed": self.processed,
            "failed": self.failed,
        }


@translating_errors("list workers")
def workers(include_offline: bool = True) -> list[WorkerState]:
    """Every worker Redis remembers, online first, then by hostname, with its counts."""
    client: Any = get_broker()
    states = read_states(client, include_offline)
    totals = counts(client, {s.hostname for s in states})
    return [_with_counts(state, *totals.get(state.hostname, (0, 0))) for state in states]


def read_states(client: Any, include_offline: bool) -> list[WorkerState]:
    """The workers' descriptions, without their counts (remote control needs only who is online)."""
    entries = client.zrange(keys.workers(), 0, -1, withscores=True)
    if not entries:
        return []
    names = [_s(name) for name, _ in entries]
    infos = client.mget([keys.worker_info(name) for name in names])
    timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
    now = time.time()
    states = []
    for name, (_, score), raw in zip(names, entries, infos, strict=True):
        last_beat = float(score) / 1000
        online = now - last_beat <= timeout
        if online or include_offline:
            states.append(_state(name, _decode(raw), last_beat, online))
    states.sort(key=lambda s: (not s.online, s.hostname, s.started))
    return states


@translating_errors("read the task names workers registered")
def registered_task_names() -> set[str]:
    """Every task name registered by a worker Redis remembers (online or offline).

    The admin checks a periodic task's name against it: a name no worker
    has registered would be dead-lettered at every run.
    """
    client: Any = get_broker()
    names = [_s(n) for n in client.zrange(keys.workers(), 0, -1)]
    if not names:
        return set()
    # All in the global slot: one SUNION, on Redis Cluster too.
    return {_s(n) for n in client.sunion([keys.worker_tasks(n) for n in names])}


def _state(name: str, info: dict[str, Any], last_beat: float, online: bool) -> WorkerState:
    """A WorkerState from a description; fields a worker did not write get neutral values."""
    hostname = str(info.get("hostname") or name.rsplit(":", 2)[0])
    return WorkerState(
        name=name,
        hostname=hostname,
        pid=_int(info.get("pid")),
        pool=str(info.get("pool") or "?"),
        concurrency=_int(info.get("concurrency")),
        queues=_strings(info.get("queues")),
        started=_float(info.get("started")),
        last_beat=last_beat,
        online=online,
        running=_running(info.get("running")),
        load=_load(info.get("load")),
        processed=0,
        failed=0,
    )


def _with_counts(state: WorkerState, processed: int, failed: int) -> WorkerState:
    return replace(state, processed=processed, failed=failed)


def counts(client: Any, hostnames: set[str]) -> dict[str, tuple[int, int]]:
    """hostname -> (processed, failed), summed over every known queue's counters."""
    if not hostnames:
        return {}
    snapshot = counters.read(client, queue_registry.known(client))
    out: dict[str, list[float]] = {}
    for (metric, _queue, _task, worker), value in snapshot.counters.items():
        if worker not in hostnames:
            continue
        totals = out.setdefault(worker, [0.0, 0.0])
        if metric in PROCESSED:
            totals[0] += value
        if metric in FAILED:
            totals[1] += value
    return {host: (int(p), int(f)) for host, (p, f) in out.items()}


def _strings(raw: Any) -> list[str]:
    """A list of names from a description field; anything but a list reads as none."""
    return [str(item) for item in raw] if isinstance(raw, list) else []


def _running(raw: Any) -> list[RunningTask]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            out.append(
                RunningTask(
                    task_id=str(item.get("task_id", "")),
                    task=str(item.get("task", "")),
                    started=_float(item.get("started")),
                )
            )
    return out


def _load(raw: Any) -> tuple[float, float, float] | None:
    if isinstance(raw, list) and len(raw) == 3:
        try:
            return float(raw[0]), float(raw[1]), float(raw[2])
        except (TypeError, ValueError):
            return None
    return None


def _decode(raw: Any) -> dict[str, Any]:
    """A worker's record, with its text made encodable (a page shows it); {} if unreadable."""
    try:
        info = encodable_json(json.loads(raw)) if raw else {}
    except (ValueError, RecursionError):
        return {}
    return info if isinstance(info, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
