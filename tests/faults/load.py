"""A producer thread that keeps sending tasks while a fault happens, timing every call.

Each call is ``apply_async(task_id=...)`` with an id chosen first, so a call
that raised still has an id: the tests count it apart (it may or may not
have reached Redis) instead of calling it lost. A call that returned is a
promise: that task must run.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django_taskq.exceptions import BrokerUnavailable


@dataclass
class Call:
    task_id: str
    sent_at: float  # wall time the call began
    took: float  # seconds
    outcome: str  # "ok", "unavailable" (BrokerUnavailable) or "error: <type>: <message>"


@dataclass
class Producer:
    """``Producer(task, args).start()`` ... ``stop()``; then ``ok_ids()``, ``failed()``."""

    task: Any
    args: tuple[Any, ...] = ()
    interval: float = 0.01  # seconds between calls
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def start(self) -> Producer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"a delay() call has not returned after {timeout}s")

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            task_id = str(uuid.uuid4())
            began, clock = time.time(), time.monotonic()
            try:
                self.task.apply_async(args=(*self.args, n), task_id=task_id)
                outcome = "ok"
            except BrokerUnavailable:
                outcome = "unavailable"
            except Exception as exc:  # anything else is a finding, recorded
                outcome = f"error: {type(exc).__name__}: {exc}"[:300]
            self.calls.append(Call(task_id, began, time.monotonic() - clock, outcome))
            n += 1
            self._stop.wait(self.interval)

    def ok_ids(self) -> list[str]:
        return [c.task_id for c in list(self.calls) if c.outcome == "ok"]

    def ok_after(self, when: float) -> list[str]:
        """Ids of successful calls begun after ``when`` (wall time)."""
        return [c.task_id for c in list(self.calls) if c.outcome == "ok" and c.sent_at > when]

    def failed(self) -> list[Call]:
        return [c for c in list(self.calls) if c.outcome != "ok"]

    def sent_at(self) -> dict[str, float]:
        return {c.task_id: c.sent_at for c in list(self.calls)}
