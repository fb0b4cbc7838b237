"""The prefork pool: child processes that each consume on their own.

The parent only supervises: it starts children, restarts one that died or
recycled, kills one that passed its hard time limit or whose task was
terminated, and gives back the messages of a child that died. A child tells
the parent what it handles through a small shared-memory slot, never
through a pipe in the hot path.

The parent never settles a task itself. When it kills a run, it puts the
message back with a verdict (``time_limit:<s>`` or ``terminated:<signal>``)
once the child is dead, and the consumer that fetches it next settles it
that way, through the one settle step: result, follow-ups (a chord with a
timed-out member completes), ack. When a child dies by itself, the message
it was handling counts a delivery, so a message that kills its process
reaches TASKQ_MAX_DELIVERIES and is dead-lettered instead of looping.

Every child has a consumer name of its own, made new at every spawn, and
its heartbeat exists before the child is forked (DESIGN 12).

Remote control (``pool_grow``, ``pool_shrink``, a changed queue list) is
carried out here, on the supervising thread, which is the one that forks and
reaps children: the control thread hands it a request through ``submit()``
and a pipe wakes the supervisor at once. A child stopped by ``pool_shrink``
is sent SIGTERM, so it finishes its task and hands back what it prefetched,
like any warm stop, and is not replaced.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import redis

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.conf import taskq_settings
from django_taskq.worker import streams as ops
from django_taskq.worker.consumer import Consumer, Running
from django_taskq.worker.inspection import Running as RunningTask
from django_taskq.worker.lifeline import die_with_parent
from django_taskq.worker.limits import TimeLimits
from django_taskq.worker.overrides import RuntimeLimits
from django_taskq.worker.tally import Tally
from django_taskq.worker.terminate import TaskGate

logger = logging.getLogger("django_taskq.worker")

_ctx = multiprocessing.get_context("fork")
SLOT_BYTES = 1024
#: At most this much of a task's name goes into a slot whose text is too long.
NAME_BYTES = 257
#: Room for the description of a child's async lane: about 200 tasks in flight.
LANE_BYTES = 32768


class Slot:
    """Shared memory a child writes when it starts or ends a task.

    With an async lane (worker/lane.py), the child also lists there the
    lane's tasks in flight, and the parent asks it to cancel one of them
    through a pipe (``revoke(terminate=True)``): a signal would reach the
    whole child, and the lane's other tasks with it.
    """

    def __init__(self, lane: bool = False) -> None:
        self.desc: Any = _ctx.Array(ctypes.c_char, SLOT_BYTES)  # stream \n entry \n task id \n name
        self.started: Any = _ctx.Value(ctypes.c_double, 0.0, lock=False)
        self.hard: Any = _ctx.Value(ctypes.c_double, 0.0, lock=False)
        #: The signal number revoke(terminate=True) is about to send, written by
        #: the parent first, so the child tells it from a shutdown's SIGTERM.
        self.terminate: Any = _ctx.Value(ctypes.c_int, 0, lock=False)
        #: The lane's tasks: "stream\tentry\ttask id\tname\tstarted" lines.
        self.lane: Any = _ctx.Array(ctypes.c_char, LANE_BYTES) if lane else None
        #: The parent writes "<task id>\t<signal>" lines; the child's lane reads them.
        self.cancel_r, self.cancel_w = os.pipe() if lane else (-1, -1)
        if lane:
            os.set_blocking(self.cancel_r, False)
            os.set_blocking(self.cancel_w, False)

    def update_lane(self, running: list[Running]) -> None:
        """In the child: list the lane's tasks in flight (an empty list when it ends)."""
        now, mono = time.time(), time.monotonic()
        lines = []
        size = 0
        for item in running:
            d, envelope = item.delivery, item.envelope
            if envelope is None:
                continue
            line = f"{d.stream}\t{d.entry_id}\t{envelope.id}\t{envelope.task}\t" + str(
                now - (mono - item.started)
            )
            size += len(line) + 1
            if size >= LANE_BYTES:
                break  # inspect shows the first ones; more is unusual
            lines.append(line)
        with self.lane.get_lock():
            self.lane.value = "\n".join(lines).encode()

    def lane_tasks(self) -> list[RunningTask]:
        """In the parent: the lane's tasks in flight."""
        if self.lane is None:
            return []
        with self.lane.get_lock():
            text = self.lane.value.decode(errors="replace")
        out = []
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) == 5:
                stream, entry_id, task_id, task_name, started = parts
                out.append(RunningTask(task_id, task_name, float(started), stream, entry_id))
        return out

    def ask_cancel(self, task_id: str, signame: str) -> None:
        """In the parent: ask the child's lane to cancel ``task_id``."""
        try:
            os.write(self.cancel_w, f"{task_id}\t{signame}\n".encode())
        except (BlockingIOError, OSError):
            logger.warning("cannot ask a child to cancel task %s (its pipe is full)", task_id)

    def close(self) -> None:
        """In the parent, once the child is gone: close the pipe."""
        for fd in (self.cancel_r, self.cancel_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.cancel_r = self.cancel_w = -1

    def update(self, running: Running | None, hard: float | None) -> None:
        with self.desc.get_lock():
            if running is None:
                self.started.value = 0.0
                return
            d = running.delivery
            envelope = running.envelope
            task_id = envelope.id if envelope else d.raw_task_id.decode(errors="replace")
            task_name = envelope.task if envelope else "?"
            if "\n" in task_id:  # an entry's raw id can hold anything: keep the lines apart
                task_id = task_id.replace("\n", " ")
            data = f"{d.stream}\n{d.entry_id}\n{task_id}\n{task_name}".encode(errors="replace")
            if len(data) >= SLOT_BYTES:
                data = _cut_desc(d.stream, d.entry_id, task_id, task_name)
            self.desc.value = data
            self.hard.value = hard or 0.0
            self.started.value = time.time()

    def running(self) -> RunningTask | None:
        """The task the child runs now; None between tasks and while an entry is checked."""
        read = self.read()
        if read is None:
            return None
        stream, entry_id, task_id, task_name = [*read[2], "", "", "", ""][:4]
        if task_name == "?":
            return None
        return RunningTask(task_id, task_name, read[0], stream, entry_id)

    def read(self) -> tuple[float, float, list[str]] | None:
        with self.desc.get_lock():
            started = self.started.value
            if not started:
                return None
            # errors="replace": whatever bytes an entry's id held (fuzzed, not
            # UTF-8, cut mid-character) must not raise in the parent, whose
            # heartbeat and supervision loop read this.
            return started, self.hard.value, self.desc.value.decode(errors="replace").split("\n")

    def clear(self) -> None:
        with self.desc.get_lock():
            self.started.value = 0.0


def _cut_desc(stream: str, entry_id: str, task_id: str, task_name: str) -> bytes:
    """A slot's text cut to SLOT_BYTES: the id is shortened, the four lines stay.

    For an entry's raw id of any length and bytes, read while the entry is
    checked (a producer and the worker keep real ids to 255 bytes), or a
    long name. The cut may split a character, which
    ``Slot.read()`` replaces; the stream and entry id, which the parent acts
    on, are never cut.
    """
    head = f"{stream}\n{entry_id}\n".encode(errors="replace")
    tail = ("\n" + task_name).encode(errors="replace")[:NAME_BYTES]
    room = max(SLOT_BYTES - 1 - len(head) - len(tail), 0)
    return head + task_id.encode(errors="replace")[:room] + tail


@dataclass
class Child:
    index: int
    name: str
    slot: Slot
    process: Any = None
    forked: bool = False
    #: The verdict of a run the parent killed ("time_limit:30", "terminated:SIGKILL").
    verdict: str | None = None
    started_at: float = field(default_factory=time.time)
    #: The queues it was started with (the worker's may change since).
    queues: list[str] = field(default_factory=list)
    #: Stopped by pool_shrink: not replaced when it exits.
    retiring: bool = False
    #: A termination by a catchable signal: (entry id, signal name, SIGKILL deadline).
    terminating: tuple[str, str, float] | None = None


def child_main(
    name: str,
    queues: list[str],
    hostname: str,
    options: dict[str, Any],
    slot: Slot,
    runtime: RuntimeLimits | None = None,
    parent: int = 0,
) -> None:
    """Entry point of a child process (runs after fork); ``parent`` is the worker's pid."""
    die_with_parent(signal.SIGKILL, parent)  # no orphans consuming
    stop = threading.Event()
    gate: list[TaskGate] = []  # the consumer's, once it exists

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # revoke(terminate=True, signal=SIGTERM or SIGINT): the parent wrote
        # the signal into the slot first; Terminated is raised in the task.
        if slot.terminate.value == signum:
            slot.terminate.value = 0
            if gate:
                gate[0].raise_here(signal.Signals(signum).name)
            return
        if signum == signal.SIGTERM:
            stop.set()  # warm shutdown: finish the task, then exit
        # SIGINT: ignored; the parent decides on Ctrl-C

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by spawn()
    limits = TimeLimits(options.get("soft_time_limit"), options.get("time_limit"), soft_only=True)

    def on_start(running: Running | None) -> None:
        hard = None
        if running is not None and running.envelope is not None:
            _, hard = limits.effective(
                running.envelope.soft_time_limit, running.envelope.time_limit
            )
        slot.update(running, hard)

    lane = slot.lane is not None
    if lane:
        os.close(slot.cancel_w)  # only the parent writes
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
        tune=runtime.tune if runtime is not None else None,
        async_concurrency=int(options.get("async_concurrency") or 1),
        on_lane=slot.update_lane if lane else None,
        cancel_fd=slot.cancel_r if lane else None,
        on_end=_counter(options.get("tally"), stop),
        enough=options["tally"].reached if options.get("tally") is not None else None,
        on_idle=options["idle"].tell if options.get("idle") is not None else None,
    )
    gate.append(consumer.gate)
    consumer.run()


def _counter(tally: Tally | None, stop: threading.Event) -> Callable[[bool], None] | None:
    """A child's ``on_end``: count in the shared tally; stop fetching once --max-tasks is met.

    The parent sees the count too and stops the worker (``PreforkPool.run``).
    """
    if tally is None:
        return None

    def on_end(failed: bool) -> None:
        if tally.count(failed):
            stop.set()

    return on_end


class PreforkPool:
    """Start, watch and restart ``concurrency`` child consumers."""

    def __init__(self, worker: Any, concurrency: int) -> None:
        self.worker = worker
        self.concurrency = concurrency
        self.children: dict[int, Child] = {}
        self.generation = 0
        self.fork_lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def consumer_names(self) -> list[str]:
        """Every child's name, started or about to be (its heartbeat must exist first)."""
        return [
            c.name for c in list(self.children.values()) if c.process is not None or not c.forked
        ]

    def spawn(self, index: int) -> Child:
        from django.db import connections

        self.generation += 1
        name = self.worker.consumer_name(f"{index}.{self.generation}")
        lane = int(self.worker.options.get("async_concurrency") or 1) > 1
        child = Child(index, name, Slot(lane), queues=list(self.worker.queues))
        self.children[index] = child
        # The heartbeat exists before the first read (waiting while Redis is away).
        if not self.worker.heartbeat.beat_until_done():  # stopped meanwhile
            self.children.pop(index, None)
            return child
        connections.close_all()  # never fork with an open database connection
        # SIGTERM is blocked across the fork, and the child unblocks it once
        # its own handler is in: a warm restart (add_consumer) sent in the
        # child's first milliseconds would otherwise run the worker's handler
        # inherited by the child, and the child would go on with its old queues.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        with self.fork_lock:
            process = _ctx.Process(
                target=child_main,
                args=(
                    name,
                    child.queues,
                    self.worker.hostname,
                    self.worker.options,
                    child.slot,
                    self.worker.runtime_limits,
                    os.getpid(),
                ),
                name=f"taskq-child-{index}",
                daemon=False,
            )
            try:
                process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.process = process
        child.forked = True
        return child

    def start(self) -> None:
        for index in range(self.concurrency):
            self.spawn(index)

    def run(self, stopping: threading.Event, cold: threading.Event) -> None:
        """Supervise until stopped; returns when every child has exited."""
        signalled = False
        while True:
            self._carry_out_requests()
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
            multiprocessing.connection.wait([*sentinels, self._wake_r], timeout=0.25)
            tally = self.worker.tally
            if tally is not None and tally.reached() and not stopping.is_set():
                self.worker.max_tasks_reached()  # before a child that stopped is replaced
            for c in alive:
                if c.process.exitcode is not None:
                    self._after_exit(c, cold=cold.is_set())
                    if c.retiring:
                        self.children.pop(c.index, None)
                        logger.info("child %s stopped (pool_shrink)", c.name)
                    elif not stopping.is_set():
                        self.spawn(c.index)
            self.enforce_time_limits()
            self.enforce_terminations()
        self._fail_requests()

    # -- remote control, carried out on the supervising thread ---------------------
    def submit(self, request: Callable[[], Any]) -> Future[Any]:
        """Run ``request`` on the supervising thread soon; its outcome comes in the Future."""
        future: Future[Any] = Future()
        self._requests.put((request, future))
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already
        return future

    def _carry_out_requests(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                request, future = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(request())
            except Exception as exc:
                future.set_exception(exc)

    def _fail_requests(self) -> None:
        while True:
            try:
                _, future = self._requests.get_nowait()
            except queue.Empty:
                return
            future.set_exception(RuntimeError("the worker is shutting down"))

    def running(self) -> list[RunningTask]:
        """What each child runs now (read from their shared-memory slots)."""
        out = []
        for child in list(self.children.values()):
            if child.process is not None:
                task = child.slot.running()
                if task is not None:
                    out.append(task)
                out += child.slot.lane_tasks()
        return out

    def processes(self) -> list[int]:
        """The pids of the children alive now."""
        return [c.process.pid for c in list(self.children.values()) if c.process is not None]

    def grow(self, n: int) -> int:
        """Start ``n`` more children; returns the new concurrency."""
        self.concurrency += n
        self.worker.concurrency = self.concurrency
        for _ in range(n):
            self.spawn(max(self.children, default=-1) + 1)
        logger.info("pool grown by %d to %d children (pool_grow)", n, self.concurrency)
        return self.concurrency

    def shrink(self, n: int) -> int:
        """Stop ``n`` children after their current task (idle ones first); the new concurrency."""
        serving = [c for c in self.children.values() if c.process is not None and not c.retiring]
        if len(serving) - n < 1:
            raise ValueError(
                f"cannot shrink the pool by {n}: it has {len(serving)} child process(es) and "
                "keeps at least one (use shutdown to stop the worker)"
            )
        # Idle children first, then the newest.
        serving.sort(key=lambda c: (c.slot.read() is not None, -c.index))
        for child in serving[:n]:
            child.retiring = True
            _signal(child, signal.SIGTERM)
        self.concurrency -= n
        self.worker.concurrency = self.concurrency
        logger.info("pool shrinking by %d to %d children (pool_shrink)", n, self.concurrency)
        return self.concurrency

    def restart_children(self) -> int:
        """Warm-restart every child (to consume a changed queue list); returns how many."""
        serving = [c for c in self.children.values() if c.process is not None and not c.retiring]
        for child in serving:
            _signal(child, signal.SIGTERM)
        return len(serving)

    def _after_exit(self, child: Child, cold: bool) -> None:
        """A child ended: give its messages back (retrying until Redis answers), forget it."""
        code = child.process.exitcode
        child.process.join()
        child.process = None
        running = child.slot.read()
        child.slot.clear()
        child.slot.close()
        while True:
            try:
                self._give_back(child, code, running, cold)
                break
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                # Its heartbeat stays alive meanwhile, so no other worker takes
                # the messages half way; they are given back once Redis is back.
                logger.warning("cannot give back the messages of %s yet (%s)", child.name, exc)
                time.sleep(1.0)
        try:
            self.worker.heartbeat.forget(child.name)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # it expires by itself

    def _give_back(
        self,
        child: Child,
        code: int | None,
        running: tuple[float, float, list[str]] | None,
        cold: bool,
    ) -> None:
        client = get_broker()
        streams = keys.streams_for(child.queues or self.worker.queues)
        crashed = False
        if running is not None:
            stream, entry_id, task_id, task_name = [*running[2], "", "", "", ""][:4]
            if child.verdict is None and child.terminating and child.terminating[0] == entry_id:
                child.verdict = f"terminated:{child.terminating[1]}"  # the signal ended it
            if child.verdict is not None:
                ops.give_back(client, stream, [entry_id], verdict=child.verdict)
            elif cold:
                ops.give_back(client, stream, [entry_id])
            else:
                crashed = True
                ops.give_back(client, stream, [entry_id], crashed=True)
                logger.error(
                    "child %s died (exit code %s) while handling %s[%s]; the message counts "
                    "a delivery and will be redelivered (dead-lettered after "
                    "TASKQ_MAX_DELIVERIES)",
                    child.name,
                    code,
                    task_name,
                    task_id,
                )
        died = code not in (0, None) and child.verdict is None and not cold
        if died and running is None:
            # It died between messages: count a delivery for what it held,
            # so a message that kills it before the slot says so cannot loop.
            logger.error("child %s died (exit code %s) between tasks", child.name, code)
            crashed = True
        ops.reclaim_consumer(client, streams, child.name, crashed=crashed and running is None)

    def enforce_time_limits(self) -> None:
        now = time.time()
        for child in self.children.values():
            if child.process is None or child.verdict:
                continue
            running = child.slot.read()
            if running is None:
                continue
            started, hard, desc = running
            if hard and now - started > hard:
                self._kill(child, desc, f"time_limit:{hard:g}")

    def terminate(self, task_ids: set[str], signame: str = "SIGKILL") -> None:
        """revoke(terminate=True): signal the children running any of ``task_ids``.

        SIGKILL (the default) kills the child; the message is settled
        REVOKED once it is dead. Any other signal is sent as it is; SIGTERM
        and SIGINT raise Terminated in the task (worker/terminate.py), and a
        child still running the task TASKQ_WORKER_TERMINATE_GRACE seconds
        later is killed.
        """
        signum = signal.Signals[signame]
        grace = float(taskq_settings.WORKER_TERMINATE_GRACE)
        for child in self.children.values():
            if child.process is not None and child.slot.lane is not None:
                for task in child.slot.lane_tasks():
                    if (
                        task.task_id in task_ids
                    ):  # a lane task: cancel it alone, whatever the signal
                        child.slot.ask_cancel(task.task_id, signame)
                        logger.warning(
                            "Task %s[%s]: asked its child to cancel it (async lane)",
                            task.task,
                            task.task_id,
                        )
            running = child.slot.read() if child.process is not None else None
            if not running or len(running[2]) < 3 or running[2][2] not in task_ids:
                continue
            if signum == signal.SIGKILL:
                self._kill(child, running[2], f"terminated:{signame}")
                continue
            child.terminating = (running[2][1], signame, time.monotonic() + grace)
            child.slot.terminate.value = int(signum)
            _signal(child, signum)
            _, _, task_id, task_name = [*running[2], "", "", "", ""][:4]
            logger.warning("Task %s[%s]: sent %s to terminate it", task_name, task_id, signame)

    def enforce_terminations(self) -> None:
        """Kill a child that outlived its grace after a termination's signal."""
        now = time.monotonic()
        for child in self.children.values():
            if child.terminating is None or child.process is None or child.verdict:
                continue
            entry_id, signame, deadline = child.terminating
            running = child.slot.read()
            if running is None or len(running[2]) < 2 or running[2][1] != entry_id:
                child.terminating = None  # that run is over
                child.slot.terminate.value = 0
            elif now >= deadline:
                self._kill(child, running[2], f"terminated:{signame}")

    def _kill(self, child: Child, desc: list[str], verdict: str) -> None:
        """Kill the child; the message goes back with ``verdict`` once it is dead."""
        _, _, task_id, task_name = [*desc, "", "", "", ""][:4]
        child.verdict = verdict
        _signal(child, signal.SIGKILL)
        logger.error("Task %s[%s] killed: %s", task_name, task_id, verdict.replace(":", " "))


def _signal(child: Child, signum: int) -> None:
    if child.process is not None and child.process.pid:
        try:
            os.kill(child.process.pid, signum)
        except ProcessLookupError:
            pass
