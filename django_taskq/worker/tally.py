"""What the worker's consumers ended: for ``--max-tasks`` and the burst exit codes.

Every consumer of the worker counts each message it settles (a task's
outcome, a revoke, a dead letter) here, in all three pools. The counters
live in shared memory made before the prefork children are forked, so the
parent reads what its children ended without a pipe or a Redis round trip.
A consumer that ends the ``--max-tasks``-th message stops fetching at once;
what other consumers are running then still ends (a warm stop), so with
threads, prefork or an async lane the worker may end a few tasks over the
limit, never one it had not started yet.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from typing import Any

_ctx = multiprocessing.get_context("fork")
#: Longest wait for the counters' lock: a child killed while it held it (a hard
#: time limit, a cold shutdown) must not block the others, or the parent, for ever.
LOCK_TIMEOUT = 1.0


class Tally:
    """Counts of ended and failed messages, shared by a worker and its children."""

    def __init__(self, max_tasks: int | None = None) -> None:
        #: Stop the worker once this many messages ended (``--max-tasks``); None: never.
        self.max_tasks = max_tasks
        # Written under the lock, read without it (one aligned word: never torn).
        self._lock: Any = _ctx.Lock()
        self._ended: Any = _ctx.Value(ctypes.c_long, 0, lock=False)
        self._failed: Any = _ctx.Value(ctypes.c_long, 0, lock=False)

    def count(self, failed: bool) -> bool:
        """One message ended (``failed``: FAILURE or dead-lettered); True once the limit is met."""
        locked = self._lock.acquire(timeout=LOCK_TIMEOUT)
        try:  # without the lock (its holder died), a count may be lost to a race, never hang
            self._ended.value += 1
            if failed:
                self._failed.value += 1
            ended = int(self._ended.value)
        finally:
            if locked:
                self._lock.release()
        return self.max_tasks is not None and ended >= self.max_tasks

    @property
    def ended(self) -> int:
        return int(self._ended.value)

    @property
    def failed(self) -> int:
        return int(self._failed.value)

    def reached(self) -> bool:
        """Whether ``--max-tasks`` messages ended."""
        return self.max_tasks is not None and self.ended >= self.max_tasks


__all__ = ["Tally"]
