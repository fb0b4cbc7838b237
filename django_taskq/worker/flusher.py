"""One thread that flushes a shared Settler, so that no consumer thread waits for a flush.

The threads pool gives all its consumers one Settler (worker/settle.py):
a flush then carries what every thread ended since the last one. But a
flush is one at a time, and with each consumer flushing for itself at the
end of its batch, a hundred threads of I/O-bound tasks spent most of their
time queued on the flush lock behind each other's round trips, instead of
fetching and running the next tasks (docs/benchmarks.md, "Concurrency").

With this thread, a consumer queues its writes and nudges it; the thread
flushes at once, and what was queued during its round trip goes in the
next one. The order of writes is the Settler's own (results before acks,
within every flush), so a message is never acked before its result is
stored. What needs the writes in Redis before it goes on (a warm stop,
taking messages back after a lost connection, a ``started`` record) still
calls ``Settler.flush()`` and waits.
"""

from __future__ import annotations

import logging
import threading

from django_taskq.worker.lane import REDIS_DOWN
from django_taskq.worker.settle import Settler

logger = logging.getLogger("django_taskq.worker")

#: After a failed flush the thread waits this long, doubling up to RETRY_MAX.
RETRY_FIRST = 0.05
RETRY_MAX = 1.0


class Flusher(threading.Thread):
    """Flush ``settler`` whenever a consumer nudges; retry after a failure until it is stopped."""

    def __init__(self, settler: Settler) -> None:
        super().__init__(name="taskq-flusher", daemon=True)
        self.settler = settler
        self._nudged = threading.Event()
        self._halt = threading.Event()  # set by stop(): ends a wait before a retry
        self._stopping = False

    def nudge(self) -> None:
        """Have the queued writes flushed soon (at once, or right after the flush under way)."""
        self._nudged.set()

    def run(self) -> None:
        retry = RETRY_FIRST
        while True:
            self._nudged.wait()
            self._nudged.clear()  # before the flush: a nudge during it asks for another
            if self._stopping and not self.settler.pending():
                return
            try:
                self.settler.flush()
                retry = RETRY_FIRST
            except REDIS_DOWN as exc:
                # The writes are back in front of newer ones (Settler.flush): sent again later.
                logger.warning("the flusher lost Redis (%s); flushing again in %.2fs", exc, retry)
                self._retry_after(retry)
                retry = min(retry * 2, RETRY_MAX)
            except Exception:
                logger.exception("a flush failed; flushing again in %.2fs", retry)
                self._retry_after(retry)
                retry = min(retry * 2, RETRY_MAX)

    def _retry_after(self, seconds: float) -> None:
        self._halt.wait(seconds)
        self._nudged.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread once what is queued is flushed (or ``timeout`` passed)."""
        self._stopping = True
        self._halt.set()
        self._nudged.set()
        self.join(timeout)


__all__ = ["Flusher"]
