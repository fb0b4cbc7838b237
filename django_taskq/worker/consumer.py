"""One consumer: fetch a batch, check each entry, run it, and settle it.

A consumer is a prefork child, a thread of the thread pool, or the solo
worker itself. It talks to Redis on its own: nothing passes through the
parent. The batch adapts: it grows while tasks are fast and shrinks when
they are slow. A guard thread flushes finished tasks' results and acks
while the next task runs, so a long task never holds back the result of the
one before it, and a batch of short tasks does not stop for the flush's
round trip (Redis storing the results, acking, adding the events: the
consumer runs the next tasks meanwhile; docs/benchmarks.md). It also hands
unstarted messages back when one task runs long.

Whatever is in an entry, the consumer neither crashes nor loops on it: an
entry it cannot read is dead-lettered with the reason (worker/entries.py).
After any lost connection it first takes back what the server says it
holds, before it reads anything new, so a fetch whose reply was lost does
not leave messages stranded under a live consumer.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from django_taskq import django_tasks, signals, states
from django_taskq import request as requests
from django_taskq.broker import keys
from django_taskq.broker.connection import connects, get_broker
from django_taskq.broker.publish import once_token
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import (
    NotRegistered,
    Reject,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)
from django_taskq.messages import Envelope
from django_taskq.registry import registry
from django_taskq.request import Request
from django_taskq.task import Task
from django_taskq.trace import Outcome, execute
from django_taskq.worker import entries
from django_taskq.worker import streams as ops
from django_taskq.worker.lane import REDIS_DOWN, Lane, LostRedis
from django_taskq.worker.limits import TimeLimits
from django_taskq.worker.settle import Settler
from django_taskq.worker.terminate import TaskGate, Terminated

logger = logging.getLogger("django_taskq.worker")

#: A finished task's result and ack reach Redis within this long, whatever runs next.
FLUSH_INTERVAL = 0.005
#: Within a batch the consumer flushes itself only once the oldest write is
#: this many FLUSH_INTERVALs old (the guard thread normally flushed it).
INLINE_FLUSH_FACTOR = 4
#: A batch is sized so that it runs in about this long.
BATCH_TARGET_SECONDS = 0.05
#: After a guard round failed (not on a lost Redis), the guard waits this long.
GUARD_RETRY_SECONDS = 0.1
#: After a task has run this long, unstarted messages are handed back.
HOSTAGE_SECONDS = 1.0
#: A task still running this long after it started gets its ``started`` event.
ANNOUNCE_SECONDS = 1.0
BLOCK_MS = 1000
#: A --burst consumer's blocking read: each empty one is a look of the burst
#: watch, and the worker stops two quiet looks after its last task, so a
#: shorter read ends the burst sooner (a second instead of two) at the cost
#: of ten reads and looks a second while it waits for others' tasks.
BURST_BLOCK_MS = 100
#: Longest wait between reconnect attempts: a failover (Sentinel, Cluster) is
#: over in seconds, and the consumer must not sleep long after it.
RECONNECT_MAX = 1.0
#: Stands in for TimeLimits.applied() when no limit is set (the common case).
NO_LIMITS = contextlib.nullcontext()
#: Header of a message that was delayed by its rate limit and holds a token.
RATE_RESERVED = "taskq_rate_reserved"


@dataclass
class Running:
    """The message a consumer handles now (read by the guard thread and the parent).

    ``envelope`` is None while the entry is being checked: a crash then still
    counts as a delivery of this message.
    """

    delivery: ops.Delivery
    envelope: Envelope | None
    started: float  # time.monotonic()
    #: When the task started (epoch seconds; 0 until it does), and its delivery count.
    began: float = 0.0
    deliveries: int = 1
    #: Its ``started`` event is written (or no longer wanted: the run is over).
    announced: bool = False


@dataclass
class Unsettled:
    """A message whose run finished but whose settle step Redis interrupted."""

    delivery: ops.Delivery
    envelope: Envelope
    outcome: Outcome
    options: dict[str, Any] = field(default_factory=dict)


class Consumer:
    """Fetch, run and settle messages of ``queues`` under the consumer ``name``."""

    def __init__(
        self,
        name: str,
        queues: list[str],
        hostname: str,
        stop: threading.Event,
        *,
        prefetch: int | None = None,
        max_tasks: int | None = None,
        max_memory_kib: int | None = None,
        limits: TimeLimits | None = None,
        on_start: Callable[[Running | None], None] | None = None,
        watch_hostages: bool = True,
        tune: Callable[[Task, Envelope], None] | None = None,
        async_concurrency: int = 1,
        on_lane: Callable[[list[Running]], None] | None = None,
        cancel_fd: int | None = None,
        on_end: Callable[[bool], None] | None = None,
        enough: Callable[[], bool] | None = None,
        on_idle: Callable[[], None] | None = None,
        settler: Settler | None = None,
    ) -> None:
        self.name = name
        self.queues = queues
        self.streams = keys.streams_for(queues)
        self.hostname = hostname
        self.stop = stop
        self.prefetch = max(1, int(prefetch or taskq_settings.WORKER_PREFETCH))
        self.max_tasks = max_tasks
        self.max_memory_kib = max_memory_kib
        self.limits = limits or TimeLimits(None, None, soft_only=True)
        self.on_start = on_start
        #: Told of every message this consumer ends (True: it failed or was
        #: dead-lettered), for --max-tasks and the burst exit codes (worker/tally.py).
        self.on_end = on_end
        #: True once the worker ended --max-tasks messages: start none more.
        self.enough = enough
        #: Told when a fetch comes back empty (--burst: the watch then looks; worker/burst.py).
        self.on_idle = on_idle
        #: How long an empty fetch blocks: shorter for --burst (on_idle is set only then).
        self.block_ms = BURST_BLOCK_MS if on_idle is not None else BLOCK_MS
        #: Runtime limits (taskq_control): may change the message's time limits and the task's rate.
        self.tune = tune
        self.accept = list(taskq_settings.ACCEPT_CONTENT)
        self.max_deliveries = int(taskq_settings.MAX_DELIVERIES)
        self.batch_size = 1
        self.tasks_done = 0
        self.local: collections.deque[ops.Delivery] = collections.deque()
        self.lock = threading.Lock()  # guards self.local
        self.running: Running | None = None
        #: Ends this consumer's messages; the threads pool gives all its consumers one.
        self.settler = settler or Settler(hostname)
        self.unsettled: list[Unsettled] = []
        self.reconnected = False
        self.seen_connects = -1  # take back what we hold at the first fetch too (cheap)
        self._wake = threading.Condition()
        self._watch = watch_hostages
        self.stop_guard = False
        #: Where revoke(terminate=True) stops this consumer's running task.
        self.gate = TaskGate()
        #: With async_concurrency > 1: runs async def tasks several at once (worker/lane.py).
        self.lane = (
            Lane(self, async_concurrency, on_lane, cancel_fd) if async_concurrency > 1 else None
        )
        #: With task events on, each fetch records its batch as received (one
        #: events entry per fetch, written by the fetch itself); read once, as
        #: the Settler reads its settings.
        self.received = (
            ops.Received(hostname, int(taskq_settings.EVENTS_MAXLEN))
            if taskq_settings.EVENTS
            else None
        )

    # -- main loop -----------------------------------------------------------
    def run(self) -> None:
        """Consume until ``stop`` is set or a recycling limit is reached."""
        guard = threading.Thread(target=self._guard, daemon=True, name="taskq-guard")
        guard.start()
        backoff = 0.1
        groups_ready = False
        try:
            while not self.stop.is_set() and not self._should_recycle() and not self._enough():
                try:
                    if not groups_ready:
                        ops.ensure_groups(get_broker(), self.streams)
                        groups_ready = True
                    self._catch_up()
                    batch = [] if self.local else self._fetch()
                    if batch or self.local:
                        self._run_batch(batch)
                    backoff = 0.1
                except REDIS_DOWN as exc:
                    logger.warning(
                        "consumer %s lost Redis (%s); reconnecting in %.1fs",
                        self.name,
                        exc,
                        backoff,
                    )
                    self.reconnected = True
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, RECONNECT_MAX)
                    groups_ready = False
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        logger.error("consumer %s: Redis refused a command: %s", self.name, exc)
                        self.stop.wait(backoff)
                        backoff = min(backoff * 2, 5.0)
                    groups_ready = False  # Redis lost its data (restart): recreate groups
                    self.reconnected = True
            self._finish()
        finally:
            self.stop_guard = True
            with self._wake:
                self._wake.notify_all()
            guard.join(timeout=1)
            if self.lane is not None:
                self.lane.close()

    def _catch_up(self) -> None:
        """After a lost connection: settle what was left half done, take back what we hold."""
        if self.settler.pending():
            self.settler.flush_soon()
        if self.unsettled:
            self._settle_again()
        if self.reconnected or connects() != self.seen_connects:
            self.seen_connects = connects()
            self._take_back_own()
            self.reconnected = False

    def _take_back_own(self) -> None:
        """Queue again the pending entries the server says we hold and we do not know of.

        A fetch whose reply was lost (the connection dropped after Redis ran
        it) leaves its entries pending under this live consumer, where
        recovery never looks. They were never started here, so they run now.
        """
        self.settler.flush()
        with self.lock:
            held = {d.entry_id for d in self.local}
        held.update(u.delivery.entry_id for u in self.unsettled)
        own = ops.read_own(get_broker(), self.streams, self.name)
        found = [d for d in own if d.entry_id not in held]
        if found:
            logger.warning(
                "consumer %s took back %d message(s) it held after a lost connection",
                self.name,
                len(found),
            )
            with self.lock:
                self.local.extend(found)

    def _settle_again(self) -> None:
        while self.unsettled:
            item = self.unsettled[0]
            self.settler.finish(item.delivery, item.envelope, item.outcome, **item.options)
            self.unsettled.pop(0)

    def _finish(self) -> None:
        """Hand back unstarted messages and flush what is pending (warm stop)."""
        for attempt in range(50):
            try:
                self._settle_again()
                self._hand_back_local()
                self.settler.flush()
                return
            except REDIS_DOWN as exc:
                logger.warning("consumer %s cannot flush on exit (%s); retrying", self.name, exc)
                time.sleep(min(0.1 * (attempt + 1), 1.0))
        logger.error(
            "consumer %s gave up flushing; its pending messages will be redelivered", self.name
        )

    def _enough(self) -> bool:
        """Whether the worker's --max-tasks is met (by any of its consumers): then stop."""
        if self.enough is not None and self.enough():
            self.stop.set()
            return True
        return False

    def _should_recycle(self) -> bool:
        if self.max_tasks and self.tasks_done >= self.max_tasks:
            logger.info("consumer %s recycles after %d tasks", self.name, self.tasks_done)
            return True
        if self.max_memory_kib and rss_kib() > self.max_memory_kib:
            logger.info(
                "consumer %s recycles: memory %d KiB > %d KiB",
                self.name,
                rss_kib(),
                self.max_memory_kib,
            )
            return True
        return False

    def _fetch(self) -> list[ops.Delivery]:
        client = get_broker()
        batch = ops.fetch(client, self.queues, self.name, self.batch_size, self.received)
        if batch:
            return batch
        if self.settler.pending():
            if self.on_idle is None:
                self.settler.flush_soon()
            else:
                self.settler.flush()
        if self.on_idle is not None:
            self.on_idle()  # --burst: the watch looks (after the flush: nothing unacked here)
        batch = ops.block_fetch(
            client, self.streams, self.name, self.batch_size, self.block_ms, self.received
        )
        if not batch and self.on_idle is not None:
            self.on_idle()
        return batch

    # -- running a batch -------------------------------------------------------
    def _run_batch(self, batch: list[ops.Delivery]) -> None:
        with self.lock:
            self.local.extend(batch)
        started = time.perf_counter()
        ran = 0
        while not self.stop.is_set() and not self._enough():
            with self.lock:
                if not self.local:
                    break
                delivery = self.local.popleft()
            self._process(delivery)
            ran += 1
            # Within a batch the guard thread flushes (it wakes FLUSH_INTERVAL
            # after the oldest write while a task runs), so the round trip
            # overlaps the next tasks instead of stopping them; the consumer
            # flushes itself at the batch's end, or if the guard fell behind.
            if self.settler.pending() and (
                not self.local or self.settler.age() >= FLUSH_INTERVAL * INLINE_FLUSH_FACTOR
            ):
                self.settler.flush_soon()
            if self.max_tasks and self.tasks_done >= self.max_tasks:
                break
        if self.stop.is_set() or (self.max_tasks and self.tasks_done >= self.max_tasks):
            self._hand_back_local()
        if self.settler.pending():
            self.settler.flush_soon()
        # Once a task (before it) and once a batch: an idle worker holds no stale connection.
        close_old_connections()
        if self.lane is not None:
            ran += self.lane.take_count()  # the tasks it ran beside the one that started it
        self._adapt(ran, time.perf_counter() - started)

    def _adapt(self, ran: int, elapsed: float) -> None:
        if not ran:
            return
        per_task = elapsed / ran
        if per_task * self.batch_size * 2 <= BATCH_TARGET_SECONDS:
            self.batch_size = min(self.batch_size * 2, self.prefetch)
        elif per_task * self.batch_size > BATCH_TARGET_SECONDS * 4:
            self.batch_size = max(1, self.batch_size // 2)

    def _hand_back_local(self) -> None:
        with self.lock:
            left = list(self.local)
            self.local.clear()
        if not left:
            return
        by_stream: dict[str, list[str]] = collections.defaultdict(list)
        for d in left:
            by_stream[d.stream].append(d.entry_id)
        client = get_broker()
        try:
            for stream, ids in by_stream.items():
                ops.give_back(client, stream, ids)
        except BaseException:
            with self.lock:
                self.local.extendleft(reversed(left))
            raise
        logger.debug("consumer %s handed back %d unstarted messages", self.name, len(left))

    def _guard(self) -> None:
        """While a task runs: flush the results before it, and hand back unstarted messages.

        A round that fails on something other than a lost Redis (which each
        duty handles itself) is logged and the guard goes on: the writes of
        a failed flush are back in front of newer ones, and without its
        guard a consumer would neither flush during a long task nor hand
        back the messages it holds.
        """
        while not self.stop_guard:
            try:
                self._guard_round()
            except Exception:
                logger.exception(
                    "consumer %s: a round of its guard thread failed; the guard goes on",
                    self.name,
                )
                self.stop.wait(GUARD_RETRY_SECONDS)

    def _guard_round(self) -> None:
        """One round of the guard: wait for the next flush due or a wake-up, then act."""
        lane = self.lane
        with self._wake:
            timeout = 0.25
            busy = self.running is not None or (lane is not None and lane.active)
            # With a background flusher (the threads pool) the guard leaves flushing to it.
            if busy and self.settler.background is None and self.settler.pending():
                timeout = max(0.0, FLUSH_INTERVAL - self.settler.age())
            if timeout:
                self._wake.wait(timeout)
        if lane is not None and lane.active:
            self._guard_lane(lane)
            return
        running = self.running
        if running is None:
            return
        self._flush_due()
        ran_for = time.monotonic() - running.started
        if ran_for >= ANNOUNCE_SECONDS and not running.announced and running.began:
            self._announce(running)
        if self._watch and ran_for >= HOSTAGE_SECONDS:
            self._hand_back_hostages()

    def _guard_lane(self, lane: Lane) -> None:
        """The guard's round while the async lane runs: the same duties, for each of its tasks.

        Messages wait in the local batch only while the lane cannot start
        them (it is full, or ends for a plain task after it): they are
        handed back once no lane task has started or ended for
        HOSTAGE_SECONDS. While tasks come and go sooner, they are about to start.
        """
        self._flush_due()
        now = time.monotonic()
        for running in lane.running():
            if now - running.started >= ANNOUNCE_SECONDS and not running.announced:
                self._announce(running)
        if self._watch and self.local and now - lane.last_progress >= HOSTAGE_SECONDS:
            self._hand_back_hostages()

    def _flush_due(self) -> None:
        if self.settler.background is not None:
            return  # the threads pool's flusher flushes as soon as writes are queued
        if self.settler.pending() and self.settler.age() >= FLUSH_INTERVAL:
            try:
                self.settler.flush()
            except REDIS_DOWN:
                time.sleep(0.1)  # the consumer retries after its task

    def _hand_back_hostages(self) -> None:
        try:
            self._hand_back_local()
        except REDIS_DOWN:
            pass
        self.batch_size = 1

    def wake_guard(self) -> None:
        """Have the guard flush soon what a task that ended beside others queued (the lane)."""
        with self._wake:
            self._wake.notify_all()

    def running_now(self) -> list[Running]:
        """The messages this consumer runs now: one task, or those of its async lane."""
        running = self.running
        found = [running] if running is not None and running.envelope is not None else []
        if self.lane is not None and self.lane.active:
            found += self.lane.running()
        return found

    def _announce(self, running: Running) -> None:
        """Write the ``started`` event of a task that runs long (from the guard)."""
        running.announced = True
        envelope = running.envelope
        if envelope is None:
            return
        self.settler.started(running.delivery, envelope, running.began, running.deliveries)
        try:
            self.settler.flush()
        except REDIS_DOWN:
            pass  # flushed with the next writes

    def _set_running(self, running: Running | None) -> None:
        self.running = running
        settler = self.settler
        if running is not None and settler.background is None and settler.pending():
            with self._wake:  # the guard flushes what is pending while this runs
                self._wake.notify_all()
        if self.on_start is not None:
            self.on_start(running)

    # -- one message ------------------------------------------------------------
    def _process(self, delivery: ops.Delivery) -> None:
        """Check, run and settle one message; a Redis failure puts it back in front."""
        self._set_running(Running(delivery, None, time.monotonic()))
        try:
            try:
                message = entries.read(delivery, self.accept)
            except entries.BadEntry as bad:
                logger.error("%s; dead-lettered", bad.reason)
                self.settler.bad_entry(delivery, bad.reason, bad.task_id)
                self.ended(failed=True)
                return
            self._handle(message)
        except REDIS_DOWN as exc:
            # A lane that lost Redis started this message: it is settled again, never re-run.
            started = isinstance(exc, LostRedis)
            if not started and not any(
                u.delivery.entry_id == delivery.entry_id for u in self.unsettled
            ):
                with self.lock:
                    self.local.appendleft(delivery)  # not started: it runs after the reconnect
            raise
        finally:
            self._set_running(None)

    def _handle(self, message: entries.Message) -> None:
        task = self._admit(message)
        if task is None:
            return
        if self.lane is not None and task.is_async:
            self._set_running(None)  # the lane describes what it runs itself
            self.lane.run(message, task)
            return
        acks_late = task.acks_late
        began = self._begin(message, task, acks_late)
        envelope = message.envelope
        running = self.running
        if running is not None:  # the task starts now: its time counts from here
            running.envelope, running.started = envelope, time.monotonic()
            running.began, running.deliveries = began, message.delivery_count
            running.announced = task.track_started
            self._set_running(running)
        close_old_connections()
        soft, hard = envelope.soft_time_limit, envelope.time_limit
        limits = NO_LIMITS if self.limits.unlimited(soft, hard) else self.limits.applied(soft, hard)
        ran, terminated = self._run_gated(task, envelope, message.delivery_count, limits)
        if running is not None:
            running.announced = True  # the guard must not announce a run that is over
        self.tasks_done += 1
        self._conclude(message, task, began, ran, terminated, acks_late)

    def _admit(self, message: entries.Message) -> Task | None:
        """The task to run for ``message``; None when the message was ended instead.

        Ended here: too many deliveries, a verdict of the parent, revoked,
        expired, not registered, or over its rate limit (passed on for later).
        """
        envelope, delivery = message.envelope, message.delivery
        earlier = message.delivery_count - 1
        if earlier >= self.max_deliveries:
            reason = (
                f"task {envelope.task}[{envelope.id}] was delivered {earlier} times without "
                f"finishing (TASKQ_MAX_DELIVERIES={self.max_deliveries}): it kept killing "
                "its worker"
            )
            logger.error("%s; dead-lettered", reason)
            outcome = Outcome(
                states.FAILURE, exception=WorkerLostError(reason), reject_reason=reason
            )
            self._end(message, outcome, dead=reason)
            return None
        if message.verdict:
            self._end_by_verdict(message, message.verdict)
            return None
        if delivery.revoked:
            self._revoked(message, "revoked before it started", expired=False)
            return None
        if envelope.expires is not None and time.time() > envelope.expires:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(envelope.expires))
            self._revoked(message, f"expired at {when} UTC before it started", expired=True)
            return None
        task: Task | None
        try:
            task = registry.get(envelope.task)
        except NotRegistered:
            task = django_tasks.load(envelope)  # a Django @task outside tasks.py
        if task is None:
            reason = f"task {envelope.task} is not registered on worker {self.hostname}"
            logger.error("%s (id %s); dead-lettered", reason, envelope.id)
            outcome = Outcome(states.FAILURE, exception=NotRegistered(reason), reject_reason=reason)
            self._end(message, outcome, dead=reason)
            return None
        if self.tune is not None:
            self.tune(task, envelope)
        if task.rate_limit and not envelope.headers.get(RATE_RESERVED):
            from django_taskq.ratelimit import acquire

            wait = acquire(task.name, task.rate_limit)
            if wait > 0:
                later = _copy(envelope)
                later.eta = time.time() + wait
                later.headers[RATE_RESERVED] = True
                self.settler.pass_on(delivery, later, f"{envelope.id}:{delivery.entry_id}")
                return None
        envelope.headers.pop(RATE_RESERVED, None)
        return task

    def _begin(self, message: entries.Message, task: Task, acks_late: bool) -> float:
        """Ack early (``acks_late=False``), record STARTED (``track_started``); the start time."""
        if not acks_late:
            self.settler.ack(message.delivery)
            self.settler.flush()
        began = time.time()
        if task.track_started:
            # The STARTED record and the started event, in one round trip
            # (with what is pending), before the task can report progress.
            self.settler.started(
                message.delivery, message.envelope, began, message.delivery_count, record=True
            )
            self.settler.flush()
        return began

    def _conclude(
        self,
        message: entries.Message,
        task: Task,
        began: float,
        ran: Outcome | None,
        terminated: str | None,
        acks_late: bool,
    ) -> None:
        """Settle a message whose task ran: its outcome, or REVOKED if a terminate stopped it."""
        envelope, delivery = message.envelope, message.delivery
        if ran is None:  # revoke(terminate=True) stopped it (worker/terminate.py)
            reason = f"terminated by revoke(terminate=True) with {terminated}"
            logger.error("Task %s[%s] %s", envelope.task, envelope.id, reason)
            self._end(
                message,
                Outcome(states.REVOKED, exception=TaskRevokedError(reason), reject_reason=reason),
                started=began,
                acked=not acks_late,
            )
            self._send_revoked(message, reason, expired=False, terminated=True, signum=terminated)
            return
        outcome = ran
        _log_outcome(envelope, outcome)
        if isinstance(outcome.exception, Reject) and outcome.exception.requeue:
            # Reject(requeue=True): back to its queue as it was, no result.
            logger.info("Task %s[%s] rejected and requeued", envelope.task, envelope.id)
            self.settler.pass_on(delivery, envelope, f"{envelope.id}:{delivery.entry_id}")
            return
        options: dict[str, Any] = {"result_compression": task.result_compression, "started": began}
        if not acks_late:
            options["acked"] = True
        if outcome.state == states.RETRY and outcome.retry_envelope is not None:
            options["republish"] = outcome.retry_envelope
            options["once"] = once_token(outcome.retry_envelope)
        if outcome.reject_reason:
            options["dead"] = outcome.reject_reason
        self._end(message, outcome, **options)

    def _run_gated(
        self, task: Task, envelope: Envelope, delivery_count: int, limits: Any
    ) -> tuple[Outcome | None, str | None]:
        """Run the task inside the gate revoke(terminate=True) raises through.

        Returns its outcome, or None and the signal's name when a
        termination stopped it. The terminating exception is raised at most
        once a run, wherever the thread is until the gate is left; every
        such place is inside the ``try`` below, and leaving clears one that
        was asked for but not delivered yet (the task ended on its own).
        """
        gate = self.gate
        outcome: Outcome | None = None
        signame: str | None = None
        entered = False
        while True:
            try:
                if not entered:
                    entered = True
                    gate.enter(envelope.id)
                    with limits:
                        outcome = execute(
                            task, envelope, hostname=self.hostname, delivery_count=delivery_count
                        )
                gate.leave()
                return outcome, signame
            except Terminated as exc:
                signame = exc.signame
                if outcome is None:
                    requests.unwind()  # the run's request, if it was stopped before its pop
                # and round again: leave the gate inside the try

    def _end(self, message: entries.Message, outcome: Outcome, **options: Any) -> None:
        """Settle a message; if Redis fails meanwhile, keep it to settle again (never re-run)."""
        options.setdefault("deliveries", message.delivery_count)
        try:
            self.settler.finish(message.delivery, message.envelope, outcome, **options)
        except REDIS_DOWN:
            self.unsettled.append(Unsettled(message.delivery, message.envelope, outcome, options))
            raise
        finally:  # kept to settle again after a reconnect, it has ended all the same
            self.ended(failed=outcome.state == states.FAILURE or bool(options.get("dead")))

    def ended(self, failed: bool) -> None:
        """Count one message this consumer ended (``on_end``)."""
        if self.on_end is not None:
            self.on_end(failed)

    def _end_by_verdict(self, message: entries.Message, verdict: str) -> None:
        """The parent killed this message's run: settle it the way the parent decided."""
        kind, _, detail = verdict.partition(":")
        envelope = message.envelope
        if kind == "time_limit":
            exc: Exception = TimeLimitExceeded(
                f"hard time limit ({detail}s) exceeded; the child process was killed"
            )
            logger.error("Task %s[%s] failed: %s", envelope.task, envelope.id, exc)
            self._end(message, Outcome(states.FAILURE, exception=exc))
            return
        reason = f"terminated by revoke(terminate=True) with {detail}"
        self._end(
            message,
            Outcome(states.REVOKED, exception=TaskRevokedError(reason), reject_reason=reason),
        )
        self._send_revoked(message, reason, expired=False, terminated=True, signum=detail)

    def _revoked(self, message: entries.Message, reason: str, expired: bool) -> None:
        envelope = message.envelope
        logger.info("task %s[%s] %s", envelope.task, envelope.id, reason)
        self._end(message, Outcome(states.REVOKED, reject_reason=reason), expired=expired)
        self._send_revoked(message, reason, expired=expired, terminated=False, signum=None)

    def _send_revoked(
        self,
        message: entries.Message,
        reason: str,
        *,
        expired: bool,
        terminated: bool,
        signum: str | None,
    ) -> None:
        envelope = message.envelope
        task = registry.get(envelope.task) if envelope.task in registry else None
        request = Request.from_envelope(
            envelope, hostname=self.hostname, delivery_count=message.delivery_count, eager=False
        )
        signals.send(
            signals.task_revoked,
            task,
            request=request,
            terminated=terminated,
            signum=signum,
            expired=expired,
            reason=reason,
        )


def _copy(envelope: Envelope) -> Envelope:
    clone = Envelope.__new__(Envelope)
    clone.__dict__.update(envelope.__dict__)
    clone.headers = dict(envelope.headers)
    return clone


def _log_outcome(envelope: Envelope, outcome: Outcome) -> None:
    if outcome.state == states.SUCCESS:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "Task %s[%s] succeeded in %.4fs: %.200r",
                envelope.task,
                envelope.id,
                outcome.runtime,
                outcome.value,
            )
    elif outcome.state == states.RETRY:
        logger.info("Task %s[%s] retry: %r", envelope.task, envelope.id, outcome.exception)
    elif _expected(envelope.task, outcome.exception):
        logger.info(
            "Task %s[%s] raised an expected %r", envelope.task, envelope.id, outcome.exception
        )
    else:
        logger.error(
            "Task %s[%s] failed: %r\n%s",
            envelope.task,
            envelope.id,
            outcome.exception,
            outcome.traceback or "",
        )


def _expected(task_name: str, exc: BaseException | None) -> bool:
    """True for an error the task lists in ``throws``: logged at INFO, without a traceback."""
    from django_taskq.registry import registry

    if exc is None or task_name not in registry:
        return False
    throws = registry.get(task_name).throws
    return bool(throws) and isinstance(exc, throws)


def close_old_connections() -> None:
    """Close database connections that are broken or past CONN_MAX_AGE, as a request does."""
    from django.db import close_old_connections as close

    close()


def rss_kib() -> int:
    """Resident memory of this process in KiB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
