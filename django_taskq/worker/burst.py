"""``taskq_worker --burst``: run what the queues hold, then stop.

For a worker started by cron, a Kubernetes ``Job`` or a batch scheduler
rather than kept running (django-tasks-redis's ``run_redis_tasks`` without
``--continuous``, RQ's ``rqworker --burst``). A thread of the worker watches
its queues and starts the ordinary warm shutdown once they are done:

- nothing is ready, nothing is in flight (fetched and not acked, by this
  worker or any other), and no delayed message is due;
- and that held at two looks in a row, so a message between two states
  (handed back, being promoted) is not missed.

The watch looks only when a consumer of the worker found nothing to fetch
(``Idle``: a semaphore shared with the prefork children): once when its
queues first come back empty, and again each time its blocking read
(worker/consumer.py ``BURST_BLOCK_MS``, 0.1 s in a burst) ends with
nothing. While every consumer is busy it reads nothing at all, and it
never sleeps on a timer: Redis's blocking read is the clock. So a burst
ends about one blocking read after the last task (and the consumers stop
within another), or sooner when two consumers go idle one after the other.

A task's follow-ups (chain steps, callbacks, chord bodies) are sent before
its message is acked (the settle step), so they are seen as ready work. A
message delayed to later (an ETA, a countdown, a retry's delay) is left for
a later run: the worker says how many it leaves and when the first is due.

The watch reads the queues' counts (one read-only script per queue,
monitor/queues.py) rather than asking the consumers, so it sees every
pool the same way and the consumers' hot path is untouched.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from django_taskq.exceptions import BrokerError

logger = logging.getLogger("django_taskq.worker")

#: Looks in a row that must find nothing left before the worker stops.
QUIET_LOOKS = 2
#: After Redis refused a look, the watch waits this long before the next.
RETRY_SECONDS = 0.5


class Idle:
    """That a consumer found nothing to fetch: told by any consumer, in any process of the worker.

    A semaphore made before the prefork children are forked, so a child's
    consumer wakes the parent's watch without a pipe. A tell is one
    ``sem_post``, which holds no lock: a child killed while telling (a hard
    time limit, a cold shutdown) cannot leave the others or the watch
    blocked, as a child killed inside ``Event.set()`` could.
    """

    def __init__(self) -> None:
        self._told: Any = multiprocessing.get_context("fork").Semaphore(0)

    def tell(self) -> None:
        """Called by a consumer whose fetch came back empty (not on the hot path)."""
        self._told.release()

    def wait(self) -> None:
        """Block until a consumer tells; tells that came meanwhile count as one."""
        self._told.acquire()
        while self._told.acquire(False):
            pass


class BurstWatch(threading.Thread):
    """Calls ``done()`` once the queues ``queues()`` have nothing left to run now."""

    def __init__(
        self,
        stopping: threading.Event,
        queues: Callable[[], list[str]],
        done: Callable[[], None],
        idle: Idle,
    ) -> None:
        super().__init__(name="taskq-burst", daemon=True)
        self.stopping = stopping
        self.queues = queues
        self.done = done
        self.idle = idle

    def run(self) -> None:
        quiet = 0
        while True:
            self.idle.wait()  # a consumer came back from a fetch with nothing
            if self.stopping.is_set():
                return
            try:
                left = self._left()
            except BrokerError:
                # Redis away: the consumers wait for it and tell again once they read.
                quiet = 0
                continue
            except Exception:
                # Never die silently: a burst worker whose watch is gone runs forever.
                logger.exception("burst: cannot read the queues' counts; trying again")
                quiet = 0
                self.stopping.wait(RETRY_SECONDS)
                self.idle.tell()  # look again, whether or not a consumer tells
                continue
            if left is None:
                quiet = 0
                continue
            quiet += 1
            if quiet >= QUIET_LOOKS:
                logger.info("burst: %s; stopping", left)
                self.done()
                return

    def _left(self) -> str | None:
        """None while there is work to run now; else what is left for later, in words."""
        from django_taskq.monitor.queues import queue_stats

        now = time.time()
        later = 0
        first_due: float | None = None
        for stats in queue_stats(self.queues()):
            if stats.ready or stats.in_flight:
                return None
            if stats.next_eta is not None and stats.next_eta <= now:
                return None
            later += stats.delayed
            if stats.next_eta is not None:
                first_due = stats.next_eta if first_due is None else min(first_due, stats.next_eta)
        if not later or first_due is None:
            return "the queues are empty"
        due = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(first_due))
        return f"nothing is due; {later} delayed message(s) left, the first due at {due} UTC"


__all__ = ["BurstWatch", "Idle"]
