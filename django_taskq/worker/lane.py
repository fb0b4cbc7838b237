"""A consumer's async lane: several ``async def`` tasks at once on its event loop.

With ``TASKQ_WORKER_ASYNC_CONCURRENCY`` (``--async-concurrency``) above 1,
a consumer whose next message is an async def task does not run it alone:
it opens the lane, which runs that task as an asyncio task on the loop the
consumer keeps (async_run.py) and keeps up to N of them in flight. It
takes the next async messages of the local batch as slots free up and,
when the batch has none left, reads more on a helper thread (up to the free
slots, blocking at most a second, never on the loop), so the lane stays
full while its tasks wait on I/O. The lane ends when nothing is in flight:
when no message comes, or when the next message is a plain task, which
runs after every lane task has ended (a plain task blocks the loop, so it
never runs beside them).

Each lane task goes through the consumer's own steps: ``_admit`` (revoked,
expired, rate limit, ...), ``_begin`` (early ack, STARTED), then
``trace.execute_async`` (signals, hooks, retries, ``self.request`` in the
task's own context), then ``_conclude`` and the consumer's Settler. What a
signal does for a plain task, cancelling does here, for that task alone:

- the soft time limit cancels it (``asyncio.CancelledError`` where it
  awaits), and it fails with ``SoftTimeLimitExceeded``;
- the hard time limit cancels it, and it fails with ``TimeLimitExceeded``;
- ``revoke(terminate=True)`` cancels it, whatever signal was named, and it
  ends REVOKED as a terminated plain task does.

The process and the other lane tasks go on. Cancelling needs the task to
await: a lane task that blocks the loop in plain code holds up the others
and cannot be stopped until it awaits (run blocking code with
``sync_to_async`` or ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from django_taskq import async_run, states
from django_taskq.exceptions import (
    BrokerUnavailable,
    SoftTimeLimitExceeded,
    Terminated,
    TimeLimitExceeded,
)
from django_taskq.registry import registry
from django_taskq.trace import Outcome, execute_async
from django_taskq.worker import entries
from django_taskq.worker import streams as ops

if TYPE_CHECKING:
    from django_taskq.task import Task
    from django_taskq.worker.consumer import Consumer, Running

logger = logging.getLogger("django_taskq.worker")

#: How long the helper thread's read for more messages blocks (as the consumer's own).
READ_BLOCK_MS = 1000
#: The lane looks at the consumer's stop flag at least this often (seconds).
STOP_POLL = 0.25
#: A task still running this long after its cancellation is cancelled again.
RECANCEL_SECONDS = 1.0


#: What a lost Redis looks like: redis-py's errors, or a send that gave up
#: within TASKQ_PUBLISH_TIMEOUT (follow-ups, retries published by the settle
#: step). The consumer's too (worker/consumer.py imports it from here).
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError, BrokerUnavailable)


class LostRedis(redis.ConnectionError):
    """Redis failed while the lane ran: what it started is settled again, never re-run."""


@dataclass
class Flight:
    """One lane task in flight."""

    message: entries.Message
    task: Task
    running: Running
    acks_late: bool
    began: float
    #: Why the lane cancelled it (a time limit, Terminated); None while it runs freely.
    reason: BaseException | None = None
    #: time.monotonic() of its last cancellation.
    cancelled: float = 0.0
    job: asyncio.Task[None] | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class Lane:
    """Up to ``size`` async def tasks of one consumer at once, on the consumer's loop."""

    def __init__(
        self,
        consumer: Consumer,
        size: int,
        on_change: Callable[[list[Running]], None] | None = None,
        cancel_fd: int | None = None,
    ) -> None:
        self.consumer = consumer
        self.size = size
        #: Told what the lane runs whenever that changes (a prefork child's shared slot).
        self.on_change = on_change
        #: A pipe the prefork parent writes "<task id>\t<signal>" lines to (terminate).
        self.cancel_fd = cancel_fd
        self.flights: dict[str, Flight] = {}  # by entry id
        self.active = False
        #: time.monotonic() of the last start or end of a lane task (the guard's hostage rule).
        self.last_progress = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._count = 0
        self._ending = False
        self._abandoned = False
        self._lost: BaseException | None = None
        self._wake: asyncio.Event | None = None
        self._reader: concurrent.futures.Future[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- what others read -----------------------------------------------------------
    def running(self) -> list[Running]:
        """The lane's tasks in flight (any thread may ask)."""
        return [flight.running for flight in list(self.flights.values())]

    def take_count(self) -> int:
        """How many tasks the lane started since last asked, beside those that opened it."""
        count, self._count = self._count, 0
        return count

    def terminate_soon(self, task_ids: set[str], signame: str) -> bool:
        """From another thread: cancel the lane tasks among ``task_ids``; True if it runs one."""
        loop = self.loop
        if loop is None or not any(
            f.message.envelope.id in task_ids for f in list(self.flights.values())
        ):
            return False
        try:
            loop.call_soon_threadsafe(self.terminate, task_ids, signame)
        except RuntimeError:  # the loop closed meanwhile: the run is over
            return False
        return True

    def terminate(self, task_ids: set[str], signame: str) -> None:
        """On the loop: stop the lane tasks among ``task_ids`` (revoke(terminate=True))."""
        for flight in list(self.flights.values()):
            envelope = flight.message.envelope
            if envelope.id in task_ids and not isinstance(flight.reason, Terminated):
                logger.warning(
                    "Task %s[%s]: cancelled by revoke(terminate=True, signal=%s); the lane's "
                    "other tasks go on",
                    envelope.task,
                    envelope.id,
                    signame,
                )
                self._stop(flight, Terminated(signame))

    def close(self) -> None:
        """The consumer is done: let the helper thread go."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # -- running -----------------------------------------------------------------------
    def run(self, message: entries.Message, task: Task) -> None:
        """Run ``message`` and the async messages after it; return when none is in flight.

        Raises LostRedis when Redis failed meanwhile (the messages it
        started are settled after the reconnect, and those it did not are
        back in the local batch).
        """
        loop = async_run.loop()
        self.loop = loop
        self._ending = False
        self._abandoned = False
        self._lost = None
        self.last_progress = time.monotonic()
        self.active = True
        try:
            self._start(message, task)  # a Redis error here: the message did not start
            self._count -= 1  # the consumer counts the message that opened the lane
            loop.run_until_complete(self._main())
        except BaseException:
            self._abandon(loop)  # a cold shutdown, a bug: nothing stays on the loop
            raise
        finally:
            self.active = False
            self.loop = None
            self._changed()
        if self._lost is not None:
            raise LostRedis(str(self._lost)) from self._lost

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.cancel_fd is not None:
            self._read_cancels()  # requests left from an earlier lane: for tasks long gone
            loop.add_reader(self.cancel_fd, self._read_cancels)
        stopping = False
        try:
            while True:
                self._wake.clear()
                if self._may_take():
                    self._fill()
                    if (
                        self._reader is None
                        and self.flights
                        and len(self.flights) < self.size
                        and not self.consumer.local
                        and self._may_take()
                    ):
                        self._read_more(loop)
                if not self.flights and self._reader is None:
                    return
                self._cancel_again()
                if self.consumer.stop.is_set() and not stopping:
                    stopping = True
                    self._stopping()
                try:
                    await asyncio.wait_for(self._wake.wait(), STOP_POLL)
                except TimeoutError:
                    pass
                for flight in [f for f in self.flights.values() if f.job and f.job.done()]:
                    self._check_job(flight)
        finally:
            if self.cancel_fd is not None:
                loop.remove_reader(self.cancel_fd)

    def _cancel_again(self) -> None:
        """Cancel again the tasks still running RECANCEL_SECONDS after their cancellation.

        A cancellation can be lost: a library that turns it into its own
        timeout and retries (seen with redis.asyncio's blocking reads), or
        code that catches CancelledError and goes on. A stopped task must
        end, so it is cancelled until it does; cleanup in its ``except`` and
        ``finally`` blocks has that long each time.
        """
        now = time.monotonic()
        for flight in list(self.flights.values()):
            job = flight.job
            stopped = flight.reason is not None and job is not None and not job.done()
            if stopped and now - flight.cancelled >= RECANCEL_SECONDS:
                assert job is not None
                flight.cancelled = now
                job.cancel()

    def _stopping(self) -> None:
        """A warm stop: say what it waits for, and hand back what the lane will not start."""
        logger.warning(
            "consumer %s: warm shutdown waits for %d async task(s) in flight",
            self.consumer.name,
            len(self.flights),
        )
        try:
            self.consumer._hand_back_local()
        except Exception:  # Redis: the consumer hands them back when the lane is over
            pass

    def _may_take(self) -> bool:
        """Whether the lane may start more tasks now."""
        consumer = self.consumer
        if self._ending or self._lost is not None or consumer.stop.is_set():
            return False
        if consumer._enough():
            return False
        limit = consumer.max_tasks
        return not (limit and consumer.tasks_done + len(self.flights) >= limit)

    def _fill(self) -> None:
        while len(self.flights) < self.size and self._may_take():
            taken = self._take()
            if taken is None:
                return
            try:
                self._start(*taken)
            except REDIS_DOWN as exc:  # in its early ack or STARTED write
                self._lost = exc
                with self.consumer.lock:
                    self.consumer.local.appendleft(taken[0].delivery)
                return

    def _take(self) -> tuple[entries.Message, Task] | None:
        """The next async message of the local batch, checked and admitted; None: none now.

        A plain task's message stays in front and ends the lane: it runs
        once the lane's tasks have ended.
        """
        consumer = self.consumer
        while True:
            with consumer.lock:
                if not consumer.local:
                    return None
                delivery = consumer.local.popleft()
            try:
                message = entries.read(delivery, consumer.accept)
            except entries.BadEntry as bad:
                logger.error("%s; dead-lettered", bad.reason)
                consumer.settler.bad_entry(delivery, bad.reason, bad.task_id)
                consumer.ended(failed=True)
                continue
            name = message.envelope.task
            found = registry.get(name) if name in registry else None
            if found is None or not found.is_async:
                with consumer.lock:
                    consumer.local.appendleft(delivery)
                self._ending = True
                return None
            try:
                task = consumer._admit(message)
            except REDIS_DOWN as exc:  # in a rate limit or a settle
                self._lost = exc
                if not any(u.delivery.entry_id == delivery.entry_id for u in consumer.unsettled):
                    with consumer.lock:
                        consumer.local.appendleft(delivery)
                return None
            if task is not None:
                return message, task

    def _start(self, message: entries.Message, task: Task) -> None:
        from django_taskq.worker.consumer import Running

        consumer = self.consumer
        acks_late = task.acks_late
        began = consumer._begin(message, task, acks_late)
        envelope = message.envelope
        running = Running(
            message.delivery,
            envelope,
            time.monotonic(),
            began=began,
            deliveries=message.delivery_count,
            announced=task.track_started,
        )
        flight = Flight(message, task, running, acks_late, began)
        loop = self.loop
        assert loop is not None
        flight.job = loop.create_task(self._fly(flight))
        soft, hard = consumer.limits.effective(envelope.soft_time_limit, envelope.time_limit)
        if soft:
            exc: BaseException = SoftTimeLimitExceeded(f"soft time limit ({soft:g}s) exceeded")
            flight.timers.append(loop.call_later(soft, self._stop, flight, exc))
        if hard:
            exc = TimeLimitExceeded(f"hard time limit ({hard:g}s) exceeded; the task was cancelled")
            flight.timers.append(loop.call_later(hard, self._stop, flight, exc))
        self.flights[message.delivery.entry_id] = flight
        self._count += 1
        self.last_progress = time.monotonic()
        self._changed()

    async def _fly(self, flight: Flight) -> None:
        """Run one lane task and settle it."""
        envelope = flight.message.envelope
        consumer = self.consumer
        outcome: Outcome | None = None
        terminated: str | None = None
        try:
            try:
                outcome = await execute_async(
                    flight.task,
                    envelope,
                    hostname=consumer.hostname,
                    delivery_count=flight.message.delivery_count,
                    interrupted=lambda: flight.reason,
                )
            except asyncio.CancelledError:  # cancelled before its first step: it never ran
                reason = flight.reason
                if isinstance(reason, Terminated) or reason is None:
                    raise Terminated(getattr(reason, "signame", "SIGTERM")) from None
                outcome = Outcome(states.FAILURE, exception=reason)
        except Terminated as exc:
            terminated = exc.signame
        finally:
            for timer in flight.timers:
                timer.cancel()
            flight.running.announced = True  # the guard must not announce a run that is over
        self._land(flight, outcome, terminated)

    def _land(self, flight: Flight, outcome: Outcome | None, terminated: str | None) -> None:
        consumer = self.consumer
        if self._abandoned:
            return  # a cold shutdown or a bug ended the lane: its messages go back unsettled
        self.flights.pop(flight.message.delivery.entry_id, None)
        consumer.tasks_done += 1
        self.last_progress = time.monotonic()
        try:
            consumer._conclude(
                flight.message, flight.task, flight.began, outcome, terminated, flight.acks_late
            )
        except REDIS_DOWN as exc:  # kept in consumer.unsettled, settled after the reconnect
            self._lost = exc
        self._changed()
        consumer.wake_guard()
        if self._wake is not None:
            self._wake.set()

    def _check_job(self, flight: Flight) -> None:
        """A job that ended without landing (it raised past ``_fly``): re-raise it here."""
        job = flight.job
        if job is None or flight.message.delivery.entry_id not in self.flights:
            return
        error = job.exception() if not job.cancelled() else asyncio.CancelledError()
        if error is not None:
            raise error

    def _stop(self, flight: Flight, reason: BaseException) -> None:
        """Cancel one lane task, saying why (a time limit, a terminate)."""
        job = flight.job
        if job is None or job.done() or isinstance(flight.reason, (TimeLimitExceeded, Terminated)):
            return
        if not isinstance(reason, Terminated):
            envelope = flight.message.envelope
            logger.warning("Task %s[%s]: %s", envelope.task, envelope.id, reason)
        flight.reason = reason
        flight.cancelled = time.monotonic()
        job.cancel()

    def _read_more(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fetch up to the free slots on the helper thread; wake the lane when it is done."""
        consumer = self.consumer
        free = self.size - len(self.flights)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="taskq-lane-read"
            )

        def read() -> None:
            client = consumer_broker()
            got = ops.fetch(client, consumer.queues, consumer.name, free, consumer.received)
            if not got:
                if consumer.settler.pending():
                    consumer.settler.flush_soon()
                got = ops.block_fetch(
                    client, consumer.streams, consumer.name, free, READ_BLOCK_MS, consumer.received
                )
            with consumer.lock:
                consumer.local.extend(got)

        def done(future: concurrent.futures.Future[None]) -> None:
            try:
                loop.call_soon_threadsafe(self._read_done, future)
            except RuntimeError:  # the loop is closed: the lane was abandoned
                pass

        self._reader = self._executor.submit(read)
        self._reader.add_done_callback(done)

    def _read_done(self, future: concurrent.futures.Future[None]) -> None:
        self._reader = None
        error = future.exception()
        if error is not None:
            self._lost = error
        if self._wake is not None:
            self._wake.set()

    def _read_cancels(self) -> None:
        """Read the prefork parent's terminate requests ("<task id>\\t<signal>" lines)."""
        fd = self.cancel_fd
        assert fd is not None
        data = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        for line in data.decode(errors="replace").splitlines():
            task_id, _, signame = line.partition("\t")
            if task_id:
                self.terminate({task_id}, signame or "SIGKILL")

    def _abandon(self, loop: asyncio.AbstractEventLoop) -> None:
        """After an error out of the lane: cancel what runs, and wait for it (briefly)."""
        self._abandoned = True
        left = [f.job for f in self.flights.values() if f.job is not None and not f.job.done()]
        self.flights.clear()
        for job in left:
            job.cancel()
        if left and not loop.is_closed() and not loop.is_running():
            try:
                loop.run_until_complete(asyncio.wait(left, timeout=1.0))
            except BaseException:  # the error that ended the lane is what is reported
                pass

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.running())


def consumer_broker() -> Any:
    """The broker client (for the helper thread's reads)."""
    from django_taskq.broker.connection import get_broker

    return get_broker()
