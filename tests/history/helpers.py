"""Events as producers and workers write them (the contract), and ways to wait for rows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django_taskq import events
from django_taskq.broker import keys

T = TypeVar("T")
#: An epoch-ms instant events of a test happen around.
T0 = 1_765_000_000_000
TASK = "tests.testapp.tasks.add"


def sent(task_id: str, ts: int = T0, **fields: Any) -> dict[str, Any]:
    return {
        "k": "sent",
        "id": task_id,
        "n": TASK,
        "ts": ts,
        "a": "(2, 3)",
        "kw": "{}",
        "pr": 5,
        **fields,
    }


def started(task_id: str, ts: int = T0 + 1000, **fields: Any) -> dict[str, Any]:
    return {
        "k": "started",
        "id": task_id,
        "n": TASK,
        "ts": ts,
        "rcv": ts - 500,
        "st": ts,
        "dc": 1,
        **fields,
    }


def received(task_id: str, ts: int = T0 + 500, w: str = "taskq@w1") -> dict[str, Any]:
    """One task's ``received`` event, as the recorder reads it from a received entry."""
    return {"k": "received", "id": task_id, "ts": ts, "rcv": ts, "w": w}


def emit_received(
    client: Any, queue: str, task_ids: list[str], ts: int = T0 + 500, worker: str = "taskq@w1"
) -> None:
    """Append a received entry to ``queue``'s events stream, in fetch.lua's format."""
    pipe = client.pipeline(transaction=False)
    pipe.sadd(keys.queues(), queue)
    pipe.xadd(keys.events(queue), {"r": json.dumps(task_ids), "ts": ts, "w": worker})
    pipe.execute()


def progress(task_id: str, ts: int, meta: Any, state: str = "PROGRESS") -> dict[str, Any]:
    return {"k": "progress", "id": task_id, "n": TASK, "ts": ts, "state": state, "meta": meta}


def ended(kind: str, task_id: str, ts: int = T0 + 3000, **fields: Any) -> dict[str, Any]:
    """A final (or retried) event, with the timings a worker's flush gives it."""
    return {
        "k": kind,
        "id": task_id,
        "n": TASK,
        "ts": ts,
        "rcv": T0 + 500,
        "st": T0 + 1000,
        "rt": 2_000_000,
        "dc": 1,
        **fields,
    }


def emit(
    client: Any, queue: str, batch: list[dict[str, Any]], worker: str | None = "taskq@w1"
) -> None:
    """Append ``batch`` as one entry of ``queue``'s events stream, as a worker's flush does."""
    pipe = client.pipeline(transaction=False)
    pipe.sadd(keys.queues(), queue)
    events.queue_xadd(pipe, keys.events(queue), batch, worker=worker)
    pipe.execute()


def wait_for(find: Callable[[], T | None], timeout: float = 20, what: str = "rows") -> T:
    """Poll (the database) until ``find`` returns something, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the recorder did not write the {what} within {timeout} s")
