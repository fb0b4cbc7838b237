"""revoke(terminate=True): stop a task that runs now, by the means each pool allows.

- **prefork**: the parent signals the child running the task with the
  signal asked for (``SIGKILL`` by default: the child dies at once and is
  replaced). ``SIGTERM`` and ``SIGINT`` raise :class:`Terminated` in the task
  instead, so its ``finally`` blocks and context managers run, and the
  child goes on with its next message; if the task has not ended
  ``TASKQ_WORKER_TERMINATE_GRACE`` seconds later, the parent kills the
  child. Any other signal is sent as it is (most end the child).
- **solo and threads**: the task runs in the worker's own process, so no
  signal can reach it alone. :class:`Terminated` is raised in the thread
  that runs it, at its next Python instruction; code blocked inside a C call
  (a socket read, ``time.sleep``) sees it only when that call returns.

Either way the task ends REVOKED, with the reason "terminated by
revoke(terminate=True) with <signal>", and ``task_revoked`` is sent with
``terminated=True``. :class:`Terminated` derives from BaseException, so a
task's ``except Exception`` does not swallow it.

:class:`TaskGate` makes sure the exception is raised only inside the task:
a consumer marks when its thread enters and leaves a task, under a lock the
terminator takes, and clears an exception that was asked for but not yet
delivered when the task ends on its own.
"""

from __future__ import annotations

import ctypes
import signal
import threading

from django_taskq.exceptions import Terminated


def signal_name(value: object) -> str:
    """The canonical name of a signal given as "SIGTERM", "term", "15" or 15.

    Raises ValueError naming the value and what is accepted.
    """
    text = str(value).strip().upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            pass
    else:
        name = text if text.startswith("SIG") else f"SIG{text}"
        if name in signal.Signals.__members__:
            return name
    raise ValueError(
        f"revoke(terminate=True, signal={value!r}): unknown signal; "
        "give a name such as 'SIGTERM' or 'SIGKILL', or its number"
    )


def _set_async_exc(ident: int, exc: type[BaseException] | None) -> int:
    set_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    return int(set_exc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None))


class TaskGate:
    """Whether a consumer's thread is inside a task, and which: the one place to stop it.

    ``enter()`` and ``leave()`` run for every task, so they take no lock:
    they only set attributes (atomic under the GIL). ``terminate()``, on
    another thread, holds the lock while it marks itself ``pending``, checks
    the task and raises; ``leave()`` clears the task first and takes the lock
    only when it sees ``pending``, so it waits for a terminate() in flight
    and takes back an exception raised too late to land in the task.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.task_id: str | None = None
        self.thread: int | None = None
        #: A terminate() is raising (or has raised) in this run.
        self.pending = False
        #: The signal a termination of this run named; None when there was none.
        self.signame: str | None = None

    def enter(self, task_id: str) -> None:
        """The calling thread starts running ``task_id``."""
        self.thread = threading.get_ident()
        self.signame = None
        self.task_id = task_id

    def leave(self) -> None:
        """The task is over: an exception asked for and not delivered yet is taken back.

        Run through ``leave_safely()``: the asked-for exception may land
        while this runs.
        """
        self.task_id = None
        if self.pending:
            with self._lock:  # after a terminate() in flight has raised
                if self.thread is not None:
                    _set_async_exc(self.thread, None)
                self.pending = False

    def leave_safely(self) -> None:
        """``leave()``, done even if the terminating exception lands meanwhile (at most once)."""
        while True:
            try:
                self.leave()
                return
            except Terminated:
                continue

    def terminate(self, task_ids: set[str], signame: str) -> bool:
        """Raise Terminated in the thread if it runs one of ``task_ids``; True if it did."""
        with self._lock:
            self.pending = True  # before the check: leave() then comes for the lock
            task_id, thread = self.task_id, self.thread
            if task_id is None or task_id not in task_ids or thread is None:
                return False
            if self.signame is not None:
                return True  # asked already: one exception a run
            self.signame = signame
            exc = type(f"Terminated_{signame}", (Terminated,), {"__init__": _init_for(signame)})
            return _set_async_exc(thread, exc) == 1

    def raise_here(self, signame: str) -> None:
        """In a signal handler of the thread that runs the task: raise Terminated now.

        Does nothing between tasks, and once a run. No lock: a handler runs
        in the thread it interrupts, which may hold it.
        """
        if self.task_id is not None and self.signame is None:
            self.signame = signame
            raise Terminated(signame)


def _init_for(signame: str) -> object:
    """An ``__init__`` that gives the exception raised asynchronously its signal's name.

    PyThreadState_SetAsyncExc raises a class, instantiated without arguments.
    """

    def __init__(self: Terminated) -> None:
        Terminated.__init__(self, signame)

    return __init__


__all__ = ["TaskGate", "Terminated", "signal_name"]  # Terminated lives in exceptions.py
