"""Runtime rate and time limits inside a worker process (set by ``taskq_control``).

The limits live in Redis (control/limits.py). A worker process loads them
at start and again when a control request says they changed. A rate limit
is applied the way Celery applies it, by changing the task's ``rate_limit``
in this process's registry (the consumer reads it for every message); a
time limit replaces the limits the message carries, through the consumer's
``tune`` hook, before the limits are armed (and before a prefork child
tells its parent the hard limit to enforce).

Prefork children are separate processes. They must not poll Redis, and a
signal would interrupt whatever system call the task is in, so the parent
shares a version number with them (one integer of shared memory, made
before any child is forked): the parent bumps it when told of a change,
and a child compares it with the version it loaded before each message,
reloading from Redis only when it moved. Reading one integer per message
costs nothing next to running the task; a child spawned later inherits
what its parent loaded.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
from typing import TYPE_CHECKING, Any

import redis

from django_taskq.broker.connection import get_broker
from django_taskq.control import limits
from django_taskq.registry import registry

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.task import Task

logger = logging.getLogger("django_taskq.worker")


class RuntimeLimits:
    """The runtime limits of one worker process, and the hook that applies them."""

    def __init__(self, shared: bool) -> None:
        # Only the parent writes it; a torn read is impossible for one aligned long.
        self.version: Any = (
            multiprocessing.get_context("fork").Value(ctypes.c_long, 0, lock=False)
            if shared
            else None
        )
        self.loaded_version = 0
        self.times: dict[str, tuple[float | None, float | None]] = {}
        self.rates: dict[str, str | None] = {}
        self._declared_rates: dict[str, str | None] = {}

    def load(self, client: Any | None = None) -> None:
        """Read the limits from Redis and apply them to this process's tasks."""
        version = self.version.value if self.version is not None else 0
        current = limits.read(client or get_broker())
        for name in set(self._declared_rates) | set(current.rates):
            if name not in registry:
                continue
            task = registry.get(name)
            if name not in self._declared_rates:
                self._declared_rates[name] = task.rate_limit
            if name in current.rates:
                task.rate_limit = current.rates[name]
            else:
                task.rate_limit = self._declared_rates.pop(name)
        self.rates = current.rates
        self.times = current.times
        self.loaded_version = version

    def changed(self) -> None:
        """Tell this process's prefork children that the limits changed (parent only)."""
        if self.version is not None:
            self.version.value += 1

    def tune(self, task: Task, envelope: Envelope) -> None:
        """Consumer hook, before a message's rate limit and time limits are looked at."""
        if self.version is not None and self.version.value != self.loaded_version:
            try:
                self.load()
            except redis.RedisError as exc:  # the next message tries again
                logger.warning("cannot load runtime task limits (%s); keeping the old ones", exc)
        times = self.times.get(task.name)
        if times is not None:
            envelope.soft_time_limit, envelope.time_limit = times

    def effective(self, task: Task) -> dict[str, Any]:
        """The limits ``task`` runs with here (what ``registered`` and ``stats`` show)."""
        soft, hard = self.times.get(task.name, (task.soft_time_limit, task.time_limit))
        return {"rate_limit": task.rate_limit, "soft_time_limit": soft, "time_limit": hard}
