"""The prefork pool: child processes that each consume on their own.

The parent only supervises: it starts children, restarts one that died or
recycled, kills one that passed its hard time limit (recording FAILURE with
TimeLimitExceeded and acking that message), and gives back the messages of a
child that crashed. A child tells the parent what it runs through a small
shared-memory slot, never through a pipe in the hot path.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.connection import get_backend, get_broker
from django_taskq.broker.scripts import script
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import TaskRevokedError, TimeLimitExceeded
from django_taskq.messages import Envelope
from django_taskq.trace import Outcome, result_record
from django_taskq.worker import streams as ops
from django_taskq.worker.consumer import Consumer, Running
from django_taskq.worker.limits import TimeLimits

logger = logging.getLogger("django_taskq.worker")

_ctx = multiprocessing.get_context("fork")
SLOT_BYTES = 1024


class Slot:
    """Shared memory a child writes when it starts or ends a task."""

    def __init__(self) -> None:
        self.desc: Any = _ctx.Array(ctypes.c_char, SLOT_BYTES)  # stream \n entry \n task id \n name
        self.started: Any = _ctx.Value(ctypes.c_double, 0.0, lock=False)
        self.hard: Any = _ctx.Value(ctypes.c_double, 0.0, lock=False)

    def update(self, running: Running | None, hard: float | None) -> None:
        with self.desc.get_lock():
            if running is None:
                self.started.value = 0.0
                return
            d = running.delivery
            text = f"{d.stream}\n{d.entry_id}\n{d.task_id}\n{running.envelope.task}"
            self.desc.value = text.encode()[: SLOT_BYTES - 1]
            self.hard.value = hard or 0.0
            self.started.value = time.time()

    def read(self) -> tuple[float, float, list[str]] | None:
        with self.desc.get_lock():
            started = self.started.value
            if not started:
                return None
            return started, self.hard.value, self.desc.value.decode().split("\n")

    def clear(self) -> None:
        with self.desc.get_lock():
            self.started.value = 0.0


@dataclass
class Child:
    index: int
    name: str
    slot: Slot
    process: Any = None
    killed_for: str | None = None  # "time limit" / "revoked": message already finished
    started_at: float = field(default_factory=time.time)


def _set_parent_death_signal() -> None:
    """Ask Linux to SIGKILL this child if the parent dies (no orphans consuming)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - not Linux
        pass


def child_main(
    name: str, queues: list[str], hostname: str, options: dict[str, Any], slot: Slot
) -> None:
    """Entry point of a child process (runs after fork)."""
    _set_parent_death_signal()
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    limits = TimeLimits(options.get("soft_time_limit"), options.get("time_limit"), soft_only=True)

    def on_start(running: Running | None) -> None:
        hard = None
        if running is not None:
            _, hard = limits.effective(
                running.envelope.soft_time_limit, running.envelope.time_limit
            )
        slot.update(running, hard)

    consumer = Consumer(
        name,
        queues,
        hostname,
        stop,
        prefetch=options.get("prefetch"),
        max_tasks=options.get("max_tasks_per_child"),
        max_memory_kib=options.get("max_memory_per_child"),
        limits=limits,
        on_start=on_start,
    )
    consumer.run()


class PreforkPool:
    """Start, watch and restart ``concurrency`` child consumers."""

    def __init__(self, worker: Any, concurrency: int) -> None:
        self.worker = worker
        self.concurrency = concurrency
        self.children: dict[int, Child] = {}
        self.generation = 0
        self.fork_lock = threading.Lock()

    def consumer_names(self) -> list[str]:
        return [c.name for c in self.children.values() if c.process is not None]

    def spawn(self, index: int) -> Child:
        from django.db import connections

        self.generation += 1
        name = f"{self.worker.hostname}:{os.getpid()}:{index}.{self.generation}"
        slot = Slot()
        child = Child(index, name, slot)
        self.children[index] = child
        self.worker.maintenance.beat_now()  # heartbeat exists before the first read
        connections.close_all()  # never fork with an open database connection
        with self.fork_lock:
            process = _ctx.Process(
                target=child_main,
                args=(name, self.worker.queues, self.worker.hostname, self.worker.options, slot),
                name=f"taskq-child-{index}",
                daemon=False,
            )
            process.start()
        child.process = process
        return child

    def start(self) -> None:
        for index in range(self.concurrency):
            self.spawn(index)

    def run(self, stopping: threading.Event, cold: threading.Event) -> None:
        """Supervise until stopped; returns when every child has exited."""
        signalled = False
        while True:
            alive = [c for c in self.children.values() if c.process is not None]
            if not alive:
                break
            if stopping.is_set() and not signalled:
                for c in alive:
                    _signal(c, signal.SIGTERM)
                signalled = True
            if cold.is_set():
                for c in alive:
                    _signal(c, signal.SIGKILL)
            sentinels = [c.process.sentinel for c in alive]
            multiprocessing.connection.wait(sentinels, timeout=0.25)
            for c in alive:
                if c.process.exitcode is not None:
                    self._on_exit(c, cold=cold.is_set())
                    if not stopping.is_set():
                        self.spawn(c.index)
            self.enforce_time_limits()

    def _on_exit(self, child: Child, cold: bool) -> None:
        code = child.process.exitcode
        child.process.join()
        child.process = None
        client = get_broker()
        streams = keys.streams_for(self.worker.queues)
        running = child.slot.read()
        if running and child.killed_for is None:
            stream, entry_id, task_id, task_name = [*running[2], "", "", "", ""][:4]
            if cold:
                ops.hand_back(client, stream, [entry_id])
            else:
                what = (
                    "dead-lettered"
                    if ops.redeliver(client, stream, [entry_id]).dead
                    else ("will be redelivered")
                )
                logger.error(
                    "child %s died (exit code %s) while running %s[%s]; the message %s",
                    child.name,
                    code,
                    task_name,
                    task_id,
                    what,
                )
        elif code not in (0, None) and child.killed_for is None:
            logger.error("child %s died (exit code %s) between tasks", child.name, code)
        ops.reclaim_consumer(client, streams, child.name, bump=False)
        client.delete(keys.heartbeat(child.name))

    def enforce_time_limits(self) -> None:
        now = time.time()
        for child in self.children.values():
            if child.process is None or child.killed_for:
                continue
            running = child.slot.read()
            if running is None:
                continue
            started, hard, desc = running
            if hard and now - started > hard:
                self._kill_running(
                    child,
                    desc,
                    "time limit",
                    TimeLimitExceeded(
                        f"hard time limit ({hard:g}s) exceeded; the child process was killed"
                    ),
                )

    def terminate(self, task_ids: set[str]) -> None:
        """revoke(terminate=True): kill the children running any of ``task_ids``."""
        for child in self.children.values():
            running = child.slot.read() if child.process is not None else None
            if running and len(running[2]) >= 3 and running[2][2] in task_ids:
                self._kill_running(
                    child,
                    running[2],
                    "revoked",
                    TaskRevokedError("terminated by revoke(terminate=True)"),
                )

    def _kill_running(self, child: Child, desc: list[str], why: str, exc: Exception) -> None:
        stream, entry_id, task_id, task_name = [*desc, "", "", "", ""][:4]
        child.killed_for = why
        _signal(child, signal.SIGKILL)
        logger.error("Task %s[%s] %s: %s", task_name, task_id, why, exc)
        state = states.REVOKED if why == "revoked" else states.FAILURE
        envelope = Envelope(id=task_id, task=task_name)
        outcome = Outcome(
            state, exception=exc, reject_reason=str(exc) if why == "revoked" else None
        )
        backend = get_backend()
        script(backend, "store_result")(
            keys=keys.result_keys(task_id),
            args=[
                result_record(envelope, outcome, self.worker.hostname),
                int(float(taskq_settings.RESULT_EXPIRES) * 1000),
            ],
            client=backend,
        )
        pipe = get_broker().pipeline(transaction=False)
        ops.queue_acks(pipe, {stream: [entry_id]})
        pipe.execute()
        child.slot.clear()


def _signal(child: Child, signum: int) -> None:
    if child.process is not None and child.process.pid:
        try:
            os.kill(child.process.pid, signum)
        except ProcessLookupError:
            pass
