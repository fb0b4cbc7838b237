"""STAND-IN for ``django_taskq.monitor.workers`` (h3-workers-control), until it is merged.

The API is the one in /work/plan/CONTRACTS.md. Built on what main has
(``control.workers()``, the worker's description); what main does not
publish yet (the running tasks, the load) is empty here. Deleted once the
real module is merged (only ``pages/sources.py`` imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_taskq import control


@dataclass(frozen=True)
class RunningTask:
    task_id: str
    task: str
    started: float


@dataclass(frozen=True)
class WorkerState:
    name: str
    hostname: str
    pid: int
    pool: str
    concurrency: int
    queues: list[str]
    started: float
    last_beat: float
    online: bool
    running: list[RunningTask]
    load: tuple[float, float, float] | None
    processed: int
    failed: int


def _num(value: Any, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return kind(0)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def workers(include_offline: bool = True) -> list[WorkerState]:
    out = []
    for info in control.workers():
        state = WorkerState(
            name=str(info.get("name", "")),
            hostname=str(info.get("hostname", "")),
            pid=_num(info.get("pid"), int),
            pool=str(info.get("pool", "")),
            concurrency=_num(info.get("concurrency"), int),
            queues=[q for q in _list(info.get("queues")) if isinstance(q, str)],
            started=_num(info.get("started"), float),
            last_beat=_num(info.get("last_beat"), float),
            online=bool(info.get("online")),
            running=[],
            load=None,
            processed=0,
            failed=0,
        )
        if include_offline or state.online:
            out.append(state)
    return out
