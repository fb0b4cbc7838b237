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


class Tally:
    """Counts of ended and failed messages, shared by a worker and its children."""

    def __init__(self, max_tasks: int | None = None) -> None:
        #: Stop the worker once this many messages ended (``--max-tasks``); None: never.
        self.max_tasks = max_tasks
        self._ended: Any = _ctx.Value(ctypes.c_long, 0)
        self._failed: Any = _ctx.Value(ctypes.c_long, 0, lock=False)

    def count(self, failed: bool) -> bool:
        """One message ended (``failed``: FAILURE or dead-lettered); True once the limit is met."""
        with self._ended.get_lock():
            self._ended.value += 1
            if failed:
                self._failed.value += 1
            ended = int(self._ended.value)
        return self.max_tasks is not None and ended >= self.max_tasks

    @property
    def ended(self) -> int:
        with self._ended.get_lock():
            return int(self._ended.value)

    @property
    def failed(self) -> int:
        with self._ended.get_lock():
            return int(self._failed.value)

    def reached(self) -> bool:
        """Whether ``--max-tasks`` messages ended."""
        return self.max_tasks is not None and self.ended >= self.max_tasks


__all__ = ["Tally"]
