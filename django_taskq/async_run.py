"""The event loop each consumer thread owns, for ``async def`` tasks.

A task whose function is ``async def`` returns a coroutine when called; the
worker runs it to its end on the calling thread's own event loop, made the
first time and kept for every later async task of that thread (a prefork
child, the solo consumer, each thread of the threads pool). One loop per
consumer, not ``asyncio.run()`` per task: a loop's start costs more than a
small task, and connections an async client keeps (redis.asyncio, httpx)
stay usable from one task to the next.

Everything else is as for a plain task: the acks, retries (raise
``self.retry()`` or ``autoretry_for``), results and time limits. The soft
limit cancels the coroutine (``asyncio.CancelledError`` where it awaits, so
its ``except CancelledError`` and ``finally`` blocks run) and the task
fails with ``SoftTimeLimitExceeded``; the hard limit kills the prefork
child that runs it. A run that ends early never leaves its coroutine on the
loop to go on during the next task. The Django ORM inside an async task
follows Django's async rules: use the ORM's ``a``-methods (``aget``,
``acreate``, ...) or ``sync_to_async`` (docs/tasks.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

_local = threading.local()


def loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for async tasks (made on first use, kept open)."""
    found: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if found is None or found.is_closed():
        found = asyncio.new_event_loop()
        _local.loop = found
    return found


def run(coroutine: Coroutine[Any, Any, Any], name: str) -> Any:
    """Run an async task's coroutine to its end on this thread's loop; returns its value."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise RuntimeError(
            f"{name} is an async def task called in eager mode inside a running event loop; "
            "await the function itself there, or call apply_async() to send it to a worker"
        )
    owned = loop()
    try:
        return owned.run_until_complete(coroutine)
    except BaseException:
        # The soft time limit (a signal raised in the loop's wait) ends the
        # run while the task still awaits: cancel it, so that its cleanup
        # runs now and it never goes on inside the next task's run.
        _cancel_leftovers(owned)
        raise


def _cancel_leftovers(owned: asyncio.AbstractEventLoop) -> None:
    """Cancel what an interrupted run left on the loop; drop the loop if that fails."""
    left = [t for t in asyncio.all_tasks(owned) if not t.done()]
    try:
        for task in left:
            task.cancel()
        if left:
            owned.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    except BaseException:  # the run's own error is what the task reports
        owned.close()
        _local.loop = None
