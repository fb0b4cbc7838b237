"""The history recorder: task events from Redis into ``TaskRecord`` rows (DESIGN 16).

Producers and workers append task events to each queue's events stream
(``events.py``). The recorder reads every queue's stream as one consumer
group (``reader.py``), folds each batch's events per task into the rows the
database already holds and writes them with one bulk upsert
(``writer.py``, ``fold.py``), then acks the batch. It runs:

- in every worker by default (TASKQ_HISTORY): a process the worker starts
  and watches (``process.py``, started by ``start_in_worker``), so its ORM
  work never holds the worker's GIL;
- or in the foreground, ``python manage.py taskq_recorder``.

However many run, one records at a time: the one that holds the lease at
``keys.recorder_lease()`` (``SET NX PX``, renewed every third of its life,
as beat's leader lease). The others wait until it lapses, and the first to
take it reads back what its predecessor read and did not ack, so a
recorder killed in the middle of a batch loses nothing; the rows converge
because writing the same events twice gives the same rows.

A database that refuses a write (down, locked, a broken connection) leaves
the batch pending in Redis; the recorder says so in the log and tries again
with a growing pause (0.5 s to 30 s), renewing its lease meanwhile. Events
it cannot read are dropped and counted in a log line. Every few minutes it
also deletes rows older than TASKQ_HISTORY_RETENTION days (``retention.py``).
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

import redis
from django.db import DatabaseError, close_old_connections, connections

from django_taskq.beat.lease import Lease, holder_id
from django_taskq.broker import keys
from django_taskq.broker.connection import new_client
from django_taskq.conf import taskq_settings
from django_taskq.history import retention, writer
from django_taskq.history.reader import Entry, EventReader

if TYPE_CHECKING:
    from django_taskq.history.process import RecorderProcess

logger = logging.getLogger("django_taskq.history")

#: Seconds the lease lives without a renewal: a standby takes over this long after a crash.
LEASE_SECONDS = 10.0
#: Batches a stopping recorder reads without blocking before it lets go (``_drain``).
DRAIN_ROUNDS = 10
#: Longest blocking read (ms): the loop comes back this often to renew and look for new queues.
BLOCK_MS = 2000
#: Seconds between looks for queues registered since.
REFRESH_EVERY = 5.0
#: Seconds between prunes of old rows.
PRUNE_EVERY = 300.0
#: Pauses after a failed write or an unreachable Redis.
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
#: Seconds a worker's exit waits for its recorder process to stop.
STOP_JOIN = 12.0


def recorder_lease(client: redis.Redis, holder: str, seconds: float) -> Lease:
    """The recorder's lease (beat's lease mechanism, on the recorder's own keys)."""
    return Lease(
        client,
        holder,
        seconds,
        key=keys.recorder_lease(),
        led=keys.global_key("recorder:led"),
        channel=keys.global_key("recorder:released"),
        setting="the recorder's lease",
    )


class StopReading(BaseException):
    """Ends a recorder's blocking read at once when its process is told to stop (SIGTERM).

    A BaseException, so that no ``except Exception`` on the way takes it for
    an error to retry.
    """


class Recorder:
    """Record task events into TaskRecord rows while it holds the lease, until ``stop``."""

    #: True only while the loop waits in its blocking read, where nothing is half-done.
    reading = False

    def __init__(
        self,
        stop: threading.Event,
        *,
        hostname: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        batch: int | None = None,
    ) -> None:
        self.stop = stop
        self.holder = holder_id(hostname)
        self.client = new_client()
        self.lease = recorder_lease(self.client, self.holder, lease_seconds)
        count = int(batch or taskq_settings.HISTORY_BATCH)
        block_ms = int(min(BLOCK_MS, self.lease.renew_every * 1000 / 2))
        self.reader = EventReader(self.client, count, block_ms)
        self.leading = False
        self.next_renew = 0.0
        self.next_refresh = 0.0
        self.next_prune = 0.0
        self.backoff = BACKOFF_FIRST
        self._waiting_logged = False
        #: Totals since start (logs, tests).
        self.events = 0
        self.rows = 0
        self.dropped = 0

    def interrupt(self) -> None:
        """Stop, and end a blocking read now rather than when it times out.

        For the recorder process's SIGTERM handler (it runs in the main
        thread, between two bytecodes of the loop): a worker that stops
        waits for its recorder, which would otherwise sit out its read of up
        to BLOCK_MS first. Raised only inside the read, where no row or ack
        is half-written; entries that read had taken stay pending, and the
        next recorder reads its group's pending entries first.
        """
        self.stop.set()
        if self.reading:
            raise StopReading

    # -- the loop ------------------------------------------------------------------
    def run(self) -> None:
        """Record until ``stop`` is set; release the lease on the way out."""
        logger.info("history recorder %s started", self.holder)
        try:
            while not self.stop.is_set():
                try:
                    if self._lead():
                        self._step()
                except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                    logger.warning(
                        "history recorder: Redis is unreachable (%s); retrying in %.1fs",
                        exc,
                        self.backoff,
                    )
                    self.reader.backlog = True  # a lost reply may have left entries pending
                    self._pause()
                except Exception:
                    logger.exception(
                        "history recorder: unexpected error; retrying in %.1fs", self.backoff
                    )
                    self.reader.backlog = True
                    self._pause()
            self._drain()
        finally:
            self._release()
            connections.close_all()
            logger.info(
                "history recorder %s stopped (%d event(s) recorded into %d row write(s))",
                self.holder,
                self.events,
                self.rows,
            )

    def _drain(self) -> None:
        """At stop: record what the streams hold now, without blocking, before letting go.

        A worker that stops flushes its last results' events just before it
        tells its recorder to stop; they are recorded here rather than left
        for whichever recorder runs next (possibly none for a long while).
        Bounded (DRAIN_ROUNDS batches), and best effort: what is left stays
        in the streams for the next recorder.
        """
        if not self.leading:
            return
        try:
            for _ in range(DRAIN_ROUNDS):
                entries = self.reader.read_now()
                if not entries:
                    return
                self._record(entries)
        except Exception as exc:
            logger.warning("history recorder: last reads at stop failed (%s); left for later", exc)

    def _step(self) -> None:
        now = time.monotonic()
        if now >= self.next_refresh:
            added = self.reader.refresh()
            if added:
                logger.debug("history recorder: reading the events of %s", ", ".join(added))
            self.next_refresh = now + REFRESH_EVERY
        if now >= self.next_prune:
            self._prune()
            self.next_prune = now + PRUNE_EVERY
        self.reading = True
        try:
            if self.stop.is_set():  # told just before: a SIGTERM from here on raises instead
                return
            entries = self.reader.read()
        except StopReading:
            self.reader.backlog = True  # what the read took stays pending for the next one
            return
        finally:
            self.reading = False
        if not entries:
            close_old_connections()  # idle: give back the database connection
            if not self.reader.streams:
                self.stop.wait(self.reader.block_ms / 1000)  # no queue registered yet
            return
        self._record(entries)

    def _record(self, entries: list[Entry]) -> None:
        """Write ``entries`` into rows and ack them, while this recorder still leads."""
        if not self._lead():
            self.reader.backlog = True  # lost meanwhile: the new holder reads them back
            return
        try:
            written = writer.write(entries)
        except DatabaseError as exc:
            logger.warning(
                "history recorder: the database refused a batch (%s); its %d entries stay "
                "pending in Redis, retrying in %.1fs",
                exc,
                len(entries),
                self.backoff,
            )
            close_old_connections()  # a broken connection is replaced on the next try
            self.reader.backlog = True
            self._pause()
            return
        self.reader.ack(entries)
        self.reader.observed(len(entries), written.events + written.dropped)
        self.backoff = BACKOFF_FIRST
        self.events += written.events
        self.rows += written.rows
        self.dropped += written.dropped
        if written.dropped:
            logger.warning(
                "history recorder: dropped %d unreadable event(s) from %d entries",
                written.dropped,
                len(entries),
            )
        logger.debug("history recorder: %d event(s) into %d row(s)", written.events, written.rows)

    # -- the lease -----------------------------------------------------------------
    def _lead(self) -> bool:
        """True while this recorder holds the lease (renewed when due); else wait for it."""
        now = time.monotonic()
        if self.leading:
            if now < self.next_renew and self.lease.held():
                return True
            if self.lease.renew() or self.lease.acquire():
                self.next_renew = now + self.lease.renew_every
                return True
            self.leading = False
            logger.warning("history recorder %s lost its lease; standing by", self.holder)
            return False
        if self.lease.acquire():
            self.leading = True
            self.next_renew = now + self.lease.renew_every
            self.next_refresh = self.next_prune = 0.0
            self.reader.backlog = True  # what the previous recorder read and did not ack
            self._waiting_logged = False
            logger.info("history recorder %s is recording", self.holder)
            return True
        if not self._waiting_logged:
            logger.info(
                "history recorder %s standing by (%s holds the lease)",
                self.holder,
                self.lease.current_holder(),
            )
            self._waiting_logged = True
        # Wake when the holder's lease would lapse (it renews well before).
        self.stop.wait(min(max(0.05, self.lease.seconds_until_free() + 0.01), self.lease.seconds))
        return False

    def _release(self) -> None:
        if not self.leading:
            return
        self.leading = False
        try:
            self.lease.release()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            logger.warning("history recorder: could not release its lease (%s)", exc)

    def _pause(self) -> None:
        """Wait ``backoff`` seconds (renewing the lease meanwhile), then double it."""
        deadline = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(left, self.lease.renew_every))
            if self.leading:
                try:
                    self._lead()
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    pass

    def _prune(self) -> None:
        try:
            deleted = retention.prune()
        except DatabaseError as exc:
            logger.warning("history recorder: could not delete old rows (%s)", exc)
            close_old_connections()
            return
        if deleted:
            logger.info("history recorder: deleted %d row(s) past retention", deleted)


def run_recorder(
    stop: threading.Event, *, hostname: str | None = None, lease_seconds: float = LEASE_SECONDS
) -> None:
    """Run a recorder in this thread until ``stop`` is set (``taskq_recorder``)."""
    Recorder(stop, hostname=hostname, lease_seconds=lease_seconds).run()


def run_recorder_process(stop: threading.Event, hostname: str) -> None:
    """Run the worker's recorder in this process's main thread; SIGTERM ends it at once."""
    recorder = Recorder(stop, hostname=hostname)
    signal.signal(signal.SIGTERM, lambda *_: recorder.interrupt())
    try:
        recorder.run()
    except StopReading:  # raised as the read returned: run() has released the lease
        pass


def start_in_worker(stop: threading.Event, hostname: str) -> RecorderProcess | None:
    """Start the worker's recorder process unless TASKQ_HISTORY is off; it ends with ``stop``.

    With TASKQ_EVENTS off nothing writes events, so no recorder starts
    either (it would only make empty streams and groups). The recorder runs
    in a process of its own so that its ORM work never holds the worker's
    GIL (``process.py``). At exit the worker waits for it to release its
    lease, so another recorder takes over at once instead of after the
    lease lapses.
    """
    from django_taskq.history.process import RecorderProcess, enabled

    if not enabled():
        return None
    recorder = RecorderProcess(stop, hostname)
    recorder.start()

    def at_exit() -> None:
        stop.set()  # the worker is ending, whatever set it or not
        recorder.join(STOP_JOIN)

    atexit.register(at_exit)
    return recorder
