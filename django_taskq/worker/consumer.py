"""One consumer: fetch a batch, run it, store results and ack in one round trip.

A consumer is a prefork child, a thread of the thread pool, or the solo
worker itself. It talks to Redis on its own: nothing passes through the
parent. The batch adapts: it grows while tasks are fast and shrinks when
they are slow, and a watcher hands unstarted messages back when one task
runs long, so a long task never holds a batch of others hostage.
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

from django_taskq import signals, states
from django_taskq.broker import keys, scripts
from django_taskq.broker.connection import backend_is_broker, get_backend, get_broker
from django_taskq.broker.publish import publish
from django_taskq.broker.scripts import script
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import DecodeError, NotRegistered, Reject
from django_taskq.followups import after_finish, needs_after_finish
from django_taskq.messages import Envelope
from django_taskq.registry import registry
from django_taskq.request import Request
from django_taskq.trace import Outcome, execute, result_record
from django_taskq.worker import streams as ops
from django_taskq.worker.limits import TimeLimits

logger = logging.getLogger("django_taskq.worker")

#: Results and acks are flushed at least this often while a batch runs.
FLUSH_INTERVAL = 0.005
#: A batch is sized so that it runs in about this long.
BATCH_TARGET_SECONDS = 0.05
#: After a task has run this long, unstarted messages are handed back.
HOSTAGE_SECONDS = 1.0
BLOCK_MS = 1000
#: Stands in for TimeLimits.applied() when no limit is set (the common case).
NO_LIMITS = contextlib.nullcontext()
#: Header of a message that was delayed by its rate limit and holds a token.
RATE_RESERVED = "taskq_rate_reserved"


@dataclass
class Running:
    """The message a consumer is running now (read by the watcher and the parent)."""

    delivery: ops.Delivery
    envelope: Envelope
    started: float  # time.monotonic()


@dataclass
class PendingWrites:
    """Results, retries and acks waiting for the next flush."""

    records: list[tuple[str, str]] = field(default_factory=list)  # (task id, record)
    acks: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    retries: list[Envelope] = field(default_factory=list)
    dead: list[tuple[ops.Delivery, str]] = field(default_factory=list)
    count: int = 0

    def __bool__(self) -> bool:
        return self.count > 0


class Consumer:
    """Fetch, run and ack messages of ``queues`` under the consumer ``name``."""

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
        self.accept = list(taskq_settings.ACCEPT_CONTENT)
        self.batch_size = 1
        self.tasks_done = 0
        self.local: collections.deque[ops.Delivery] = collections.deque()
        self.lock = threading.Lock()
        self.running: Running | None = None
        self.writes = PendingWrites()
        self._last_flush = time.monotonic()
        self._watch = watch_hostages

    # -- main loop -----------------------------------------------------------
    def run(self) -> None:
        """Consume until ``stop`` is set or a recycling limit is reached."""
        watcher = None
        if self._watch:
            watcher = threading.Thread(target=self._watch_hostages, daemon=True, name="hostages")
            watcher.start()
        backoff = 0.1
        groups_ready = False
        while not self.stop.is_set() and not self._should_recycle():
            try:
                if not groups_ready:
                    ops.ensure_groups(get_broker(), self.streams)
                    groups_ready = True
                if self.writes:
                    self.flush()
                batch = self._fetch()
                if batch:
                    self._run_batch(batch)
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning(
                    "consumer %s lost Redis (%s); reconnecting in %.1fs", self.name, exc, backoff
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                groups_ready = False
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                groups_ready = False  # Redis lost its data (restart): recreate groups
        self._finish()
        if watcher is not None:
            watcher.join(timeout=1)

    def _finish(self) -> None:
        """Hand back unstarted messages and flush what is pending (warm stop)."""
        for attempt in range(50):
            try:
                self._hand_back_local()
                if self.writes:
                    self.flush()
                return
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("consumer %s cannot flush on exit (%s); retrying", self.name, exc)
                time.sleep(min(0.1 * (attempt + 1), 1.0))
        logger.error(
            "consumer %s gave up flushing; pending messages will be redelivered", self.name
        )

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
        batch = ops.fetch(client, self.streams, self.name, self.batch_size)
        if batch:
            return batch
        if self.writes:
            self.flush()
        return ops.block_fetch(client, self.streams, self.name, self.batch_size, BLOCK_MS)

    # -- running a batch -------------------------------------------------------
    def _run_batch(self, batch: list[ops.Delivery]) -> None:
        with self.lock:
            self.local.extend(batch)
        started = time.perf_counter()
        ran = 0
        while not self.stop.is_set():
            with self.lock:
                if not self.local:
                    break
                delivery = self.local.popleft()
            self._handle(delivery)
            ran += 1
            if self.writes and time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
                self.flush()
            if self.max_tasks and self.tasks_done >= self.max_tasks:
                break
        self._hand_back_local()
        if self.writes:
            self.flush()
        # Once a task (before it) and once a batch: an idle worker holds no stale connection.
        close_old_connections()
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
        for stream, ids in by_stream.items():
            ops.hand_back(client, stream, ids)
        logger.debug("consumer %s handed back %d unstarted messages", self.name, len(left))

    def _watch_hostages(self) -> None:
        """Hand back unstarted messages while one task runs long."""
        while not self.stop.wait(0.25):
            running = self.running
            if running is None or time.monotonic() - running.started < HOSTAGE_SECONDS:
                continue
            try:
                self._hand_back_local()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass
            self.batch_size = 1

    def _handle(self, delivery: ops.Delivery) -> None:
        """Run one message and queue its result and ack for the next flush."""
        w = self.writes
        try:
            envelope = Envelope.decode(delivery.body, self.accept)
        except DecodeError as exc:
            reason = f"malformed message {delivery.entry_id} on {delivery.stream}: {exc}"
            logger.error("%s; dead-lettered", reason)
            self._dead(delivery, reason, task_id=delivery.task_id or None)
            return
        if delivery.revoked:
            self._revoked(delivery, envelope, "revoked before it started", expired=False)
            return
        if envelope.expires is not None and time.time() > envelope.expires:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(envelope.expires))
            self._revoked(
                delivery, envelope, f"expired at {when} UTC before it started", expired=True
            )
            return
        try:
            task = registry.get(envelope.task)
        except NotRegistered:
            reason = f"task {envelope.task} is not registered on worker {self.hostname}"
            logger.error("%s (id %s); dead-lettered", reason, envelope.id)
            outcome = Outcome(states.FAILURE, exception=NotRegistered(reason), reject_reason=reason)
            self._dead(delivery, reason, envelope=envelope, outcome=outcome)
            return
        if task.rate_limit and not envelope.headers.pop(RATE_RESERVED, False):
            from django_taskq.ratelimit import acquire

            wait = acquire(task.name, task.rate_limit)
            if wait > 0:
                envelope.eta = time.time() + wait
                envelope.headers[RATE_RESERVED] = True
                w.retries.append(envelope)
                self._ack(delivery)
                return
        acks_late = task.acks_late
        if not acks_late:
            self._ack(delivery)
            self.flush()
        if task.track_started:
            self._store_now(envelope, states.STARTED)

        running = Running(delivery, envelope, time.monotonic())
        self.running = running
        if self.on_start is not None:
            self.on_start(running)
        close_old_connections()
        try:
            soft, hard = envelope.soft_time_limit, envelope.time_limit
            limits = (
                NO_LIMITS if self.limits.unlimited(soft, hard) else self.limits.applied(soft, hard)
            )
            with limits:
                outcome = execute(
                    task, envelope, hostname=self.hostname, delivery_count=delivery.delivery_count
                )
        finally:
            self.running = None
            if self.on_start is not None:
                self.on_start(None)
        self.tasks_done += 1
        _log_outcome(envelope, outcome)
        requeue = isinstance(outcome.exception, Reject) and outcome.exception.requeue
        if requeue:
            # Reject(requeue=True): back to its queue as it was, no result.
            logger.info("Task %s[%s] rejected and requeued", envelope.task, envelope.id)
            w.retries.append(envelope)
            self._ack(delivery)
            return
        if outcome.state != states.RETRY and needs_after_finish(envelope):
            after_finish(envelope, outcome)
        if outcome.state == states.RETRY and outcome.retry_envelope is not None:
            w.retries.append(outcome.retry_envelope)
        if outcome.reject_reason:
            w.dead.append((delivery, outcome.reject_reason))
        if not envelope.ignore_result:
            w.records.append((envelope.id, result_record(envelope, outcome, self.hostname)))
        if acks_late:
            self._ack(delivery)
        else:
            w.count += 1

    def _ack(self, delivery: ops.Delivery) -> None:
        self.writes.acks[delivery.stream].append(delivery.entry_id)
        self.writes.count += 1

    def _revoked(
        self, delivery: ops.Delivery, envelope: Envelope, reason: str, expired: bool
    ) -> None:
        logger.info("task %s[%s] %s", envelope.task, envelope.id, reason)
        outcome = Outcome(states.REVOKED, reject_reason=reason)
        if needs_after_finish(envelope):
            # A revoked chain step or chord member still settles its workflow
            # (the chain fails, the chord counts it) instead of stalling it.
            after_finish(envelope, outcome)
        self.writes.records.append((envelope.id, result_record(envelope, outcome, self.hostname)))
        self._ack(delivery)
        task = registry.get(envelope.task) if envelope.task in registry else None
        request = Request.from_envelope(
            envelope, hostname=self.hostname, delivery_count=delivery.delivery_count, eager=False
        )
        signals.send(
            signals.task_revoked,
            task,
            request=request,
            terminated=False,
            signum=None,
            expired=expired,
            reason=reason,
        )

    def _dead(
        self,
        delivery: ops.Delivery,
        reason: str,
        *,
        task_id: str | None = None,
        envelope: Envelope | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        w = self.writes
        w.dead.append((delivery, reason))
        if envelope is not None and outcome is not None:
            if needs_after_finish(envelope):
                after_finish(envelope, outcome)
            w.records.append((envelope.id, result_record(envelope, outcome, self.hostname)))
        elif task_id:
            stub = Envelope(id=task_id, task="?")
            failure = Outcome(states.FAILURE, exception=DecodeError(reason), reject_reason=reason)
            w.records.append((task_id, result_record(stub, failure, self.hostname)))
        self._ack(delivery)

    def _store_now(self, envelope: Envelope, state: str) -> None:
        client = get_backend()
        record = result_record(envelope, Outcome(state), self.hostname)
        script(client, "store_result")(
            keys=keys.result_keys(envelope.id),
            args=[record, int(float(taskq_settings.RESULT_EXPIRES) * 1000)],
            client=client,
        )

    # -- flushing --------------------------------------------------------------
    def flush(self) -> None:
        """Write queued results, retries, dead letters and acks in one round trip.

        On a connection error nothing queued is dropped: the same writes are
        tried again after reconnecting (results are idempotent; acks of
        entries Redis no longer has are no-ops).
        """
        w = self.writes
        if not w:
            return
        broker = get_broker()
        pipe = broker.pipeline(transaction=False)
        for envelope in w.retries:
            publish(envelope, pipe=pipe)
        for delivery, reason in w.dead:
            ops.dead_letter(pipe, delivery, reason)
        stored_here: list[tuple[str, str]] = []
        if w.records:
            if backend_is_broker():
                _queue_records(pipe, broker, w.records)
                stored_here = w.records
            else:
                backend = get_backend()
                rpipe = backend.pipeline(transaction=False)
                _queue_records(rpipe, backend, w.records)
                _execute_storing(rpipe, backend, w.records)
        ops.queue_acks(pipe, w.acks)
        _execute_storing(pipe, broker, stored_here)
        self.writes = PendingWrites()
        self._last_flush = time.monotonic()


def _execute_storing(pipe: Any, client: redis.Redis, records: list[tuple[str, str]]) -> None:
    """``pipe.execute()``; if Redis lost store_result.lua, load it and store ``records`` again.

    The records are queued with a bare EVALSHA (no SCRIPT EXISTS round trip
    first). After a Redis restart or SCRIPT FLUSH that EVALSHA fails with
    NOSCRIPT while the pipeline's other commands have run, so only the
    records are sent again.
    """
    try:
        pipe.execute()
    except redis.exceptions.NoScriptError:
        if not records:
            raise
        scripts.load(client, "store_result")
        again = client.pipeline(transaction=False)
        _queue_records(again, client, records)
        again.execute()


#: Most results stored by one store_result.lua call (bounds one call's run time).
RECORDS_PER_CALL = 256


def _queue_records(pipe: Any, client: redis.Redis, records: list[tuple[str, str]]) -> None:
    """Queue store_result.lua calls for ``records``: one call per RECORDS_PER_CALL."""
    ttl = int(float(taskq_settings.RESULT_EXPIRES) * 1000)
    for start in range(0, len(records), RECORDS_PER_CALL):
        part = records[start : start + RECORDS_PER_CALL]
        names: list[str] = []
        for task_id, _ in part:
            names += keys.result_keys(task_id)
        scripts.queue_evalsha(pipe, client, "store_result", names, [*(r for _, r in part), ttl])


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
    else:
        logger.error(
            "Task %s[%s] failed: %r\n%s",
            envelope.task,
            envelope.id,
            outcome.exception,
            outcome.traceback or "",
        )


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
