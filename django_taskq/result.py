"""Task results: ``AsyncResult`` to read and wait for them, and how they are stored.

A result is a JSON record under ``<prefix>:r:<task id>`` with a TTL of
``TASKQ_RESULT_EXPIRES``. ``get()`` never sleep-polls, and waits in one
round trip: a pipeline adds a wake-up list of its own to the task's waiters
set (wait_result.lua, which pushes the record to that list at once if the
task has finished) and blocks on the list (BLPOP). The worker pushes the
record to it in the same atomic step that stores a state
(store_result.lua), so it wakes within a millisecond of the result, with
the record in hand. ``await aget()`` takes the same steps with a
redis.asyncio client of the running loop (broker/aio.py).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django_taskq import states
from django_taskq.broker import errors, keys, scripts
from django_taskq.broker.connection import get_backend
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import (
    DecodeError,
    TaskError,
    TaskRevokedError,
    TimeoutError,
    registered_exception,
)
from django_taskq.messages import dumps, loads

#: Longest single blocking wait; shorter than the socket timeout, and a long
#: get() refreshes its waiter flag once per slice.
BLOCK_SLICE = 5.0


def ttl_ms() -> int:
    return int(float(taskq_settings.RESULT_EXPIRES) * 1000)


def store_state(task_id: str, state: str, meta: Any, task_name: str | None = None) -> None:
    """Store a custom or progress state (``update_state``); a finished result is kept."""
    record = dumps(
        {
            "status": state,
            "result": meta,
            "traceback": None,
            "date_done": time.time() if state in states.READY_STATES else None,
            "task": task_name,
        }
    )
    from django_taskq.broker import results

    results.store(task_id, record, state)


def _exception_class(name: str) -> type[Exception] | None:
    """The class a stored failure names, if it may be rebuilt here; never imports.

    DESIGN 8: nothing Redis holds is imported. A name is resolved only in a
    module this process has imported already (``sys.modules``), or through
    ``register_exception``. Only Exception subclasses: rebuilding SystemExit
    or KeyboardInterrupt would end the caller because a task called
    sys.exit().
    """
    cls: Any = registered_exception(name)
    if cls is None:
        parts = name.split(".") if "." in name else ["builtins", name]
        # The longest imported module prefix, then attributes (a nested class).
        for split in range(len(parts) - 1, 0, -1):
            module = sys.modules.get(".".join(parts[:split]))
            if module is None:
                continue
            cls = module
            for attr in parts[split:]:
                # vars(), not getattr(): a module's __getattr__ may import.
                cls = vars(cls).get(attr) if hasattr(cls, "__dict__") else None
            break
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls
    return None


def rebuild_exception(info: Any) -> BaseException:
    """The task's exception rebuilt from its stored form, or a TaskError."""
    if not isinstance(info, dict):
        return TaskError("Exception", str(info))
    name = str(info.get("exc_type") or "Exception")
    message = str(info.get("exc_message") or "")
    cls = _exception_class(name)
    if cls is not None:
        args = info.get("exc_args")
        try:
            return cls(*args) if isinstance(args, list) else cls(message)
        except Exception:
            pass
    return TaskError(name, message)


def check_timeout(timeout: Any, where: str) -> None:
    """TypeError or ValueError naming ``where`` unless ``timeout`` is None or a number of seconds.

    A string or NaN failed deep in the wait with a bare ValueError. A
    negative timeout is taken as 0, as before: ready now, or TimeoutError.
    """
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        shown = f"{timeout!r:.40}"
        raise TypeError(f"{where}: timeout must be a number of seconds or None, not {shown}")
    if math.isnan(timeout):
        raise ValueError(f"{where}: timeout must be a number of seconds or None, not nan")


def _bounded(timeout: float | None) -> AbstractContextManager[Any]:
    """With a timeout, a wait's Redis calls end within it plus TASKQ_PUBLISH_TIMEOUT."""
    if timeout is None:
        return nullcontext()
    from django_taskq.broker.deadline import deadline

    return deadline(max(float(timeout), 0.0) + float(taskq_settings.PUBLISH_TIMEOUT))


def assert_not_in_task(what: str) -> None:
    """Refuse a blocking wait inside a task a worker runs (eager runs are fine).

    The rule depends only on where the call is made, never on whether the
    awaited task has finished yet, so the same code behaves the same way
    however fast the other task ran.
    """
    from django_taskq.request import current_request

    request = current_request()
    if request is not None and not request.is_eager:
        raise RuntimeError(
            f"never wait for a result ({what}) inside a task ({request.task}[{request.id}]): "
            "the worker could wait for work queued behind itself. Chain the tasks "
            "instead (task.s() | other.s()); read .state or .result to look at a result "
            "without waiting; or pass disable_sync_subtasks=False if you are sure."
        )


def decode_record(task_id: str, raw: bytes | str) -> dict[str, Any]:
    """The result record ``raw`` of task ``task_id``, or DecodeError naming the task and key.

    Whatever bytes are stored under a result key (written by hand, by
    another program, or cut short), a reader gets this one clear error, not
    a JSON or Unicode error from deep inside: it says which key to look at
    and that forget() removes it.
    """
    try:
        record = loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        problem = f"is not JSON ({exc})"
    else:
        if isinstance(record, dict) and isinstance(record.get("status"), str):
            return record
        problem = "is JSON, but not a record with a status"
    raise DecodeError(
        f"the result record of task {task_id!r} (key {keys.result(task_id)!r}) {problem}: "
        "it was not written by django_taskq; AsyncResult(id).forget() deletes it"
    )


class AsyncResult:
    """The state and result of a task call, by id."""

    #: True when a unique send found this task holding its key and sent nothing (unique.py).
    existing: bool = False

    def __init__(self, id: str, task_name: str | None = None) -> None:
        self.id = id
        self.task_id = id
        self.task_name = task_name
        self._cache: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return self.id == other.id
        if isinstance(other, str):
            return self.id == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    # -- reading -------------------------------------------------------------
    def _record(self) -> dict[str, Any] | None:
        if self._cache is not None:
            return self._cache
        with errors.translating_errors(f"read the result of task {self.id}", uses="results"):
            raw = get_backend().get(keys.result(self.id))
        if raw is None:
            return None
        record = decode_record(self.id, raw)
        if record.get("status") in states.READY_STATES:
            self._cache = record  # a ready result never changes
        return record

    def exists(self) -> bool:
        """True if this id was sent (and its record has not expired or been forgotten)."""
        with errors.translating_errors(f"look up task {self.id}", uses="results"):
            return self._cache is not None or bool(get_backend().exists(keys.result(self.id)))

    @property
    def state(self) -> str:
        """PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED or a custom state."""
        record = self._record()
        return str(record["status"]) if record else states.PENDING

    status = state

    @property
    def info(self) -> Any:
        """The return value, the exception, or the meta of a custom state."""
        record = self._record()
        if record is None:
            return None
        if record["status"] in states.EXCEPTION_STATES and record.get("result") is not None:
            return rebuild_exception(record["result"])
        return record.get("result")

    @property
    def result(self) -> Any:
        return self.info

    @property
    def traceback(self) -> str | None:
        """The formatted traceback from the worker, for a failed task."""
        record = self._record()
        return record.get("traceback") if record else None

    @property
    def date_done(self) -> dt.datetime | None:
        record = self._record()
        value = record.get("date_done") if record else None
        # A record written by something else may hold anything here: no time, then.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        except (ValueError, OverflowError, OSError):
            return None

    @property
    def name(self) -> str | None:
        record = self._record()
        return (record or {}).get("task") or self.task_name

    @property
    def retries(self) -> int:
        record = self._record()
        retries = (record or {}).get("retries")
        return retries if isinstance(retries, int) and not isinstance(retries, bool) else 0

    @property
    def worker(self) -> str | None:
        record = self._record()
        return (record or {}).get("worker")

    @property
    def parent(self) -> Any:
        """The result of the task that started this one (a chain's previous step).

        Known in memory for a workflow this process just sent (an AsyncResult
        or, after a group, a GroupResult); else read from the stored record.
        """
        known = self.__dict__.get("_parent")
        if known is not None:
            return known
        record = self._record()
        parent_id = (record or {}).get("parent_id")
        return AsyncResult(parent_id) if parent_id else None

    @parent.setter
    def parent(self, value: Any) -> None:
        self.__dict__["_parent"] = value

    @property
    def children(self) -> list[AsyncResult] | None:
        """The results of the tasks this task sent while it ran, in the order it sent them.

        Read from its stored record once it has finished (None before, as
        in Celery); ``[]`` when it sent none.
        """
        record = self._record()
        if not record or record.get("status") not in states.READY_STATES:
            return None
        found = record.get("children")
        ids = found if isinstance(found, list) else []
        return [AsyncResult(str(child)) for child in ids]

    def collect(
        self, intermediate: bool = False, timeout: float | None = None
    ) -> Iterator[tuple[AsyncResult, Any]]:
        """``(result, value)`` of this task and then of every task it sent, depth first.

        Waits for each as ``get()`` does (and re-raises a failure). Celery's
        ``intermediate`` is accepted: a task whose value is itself a result
        is not followed here, since a result is not a value a task can
        return (it is stored as JSON).
        """
        value = self.get(timeout=timeout)
        yield self, value
        for child in self.children or []:
            yield from child.collect(intermediate=intermediate, timeout=timeout)

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    #: Celery's ``AsyncResult.TimeoutError``: what ``get()`` raises when it times out.
    TimeoutError = TimeoutError

    def maybe_throw(self, propagate: bool = True) -> None:
        """Raise the task's exception if it failed or was revoked; never waits.

        As Celery's: nothing happens while the task is not finished or when
        it succeeded, or with ``propagate=False``.
        """
        record = self._record() if propagate else None
        if record is not None and record.get("status") in states.PROPAGATE_STATES:
            self._outcome(record, propagate=True)  # raises as get() does

    maybe_reraise = maybe_throw

    # -- waiting -------------------------------------------------------------
    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
    ) -> Any:
        """Wait until the task is ready and return its result.

        Re-raises the task's exception when it failed (``propagate=True``);
        raises ``TimeoutError`` after ``timeout`` seconds. ``interval`` is
        accepted for Celery compatibility and ignored: there is no polling.
        Inside a task a worker runs, ``get()`` raises RuntimeError unless
        ``disable_sync_subtasks=False``, as in Celery: a worker waiting on a
        task queued behind itself deadlocks. It is refused whether or not
        the other task has finished, so the outcome never depends on timing;
        ``.state`` and ``.result`` read a result without waiting.
        """
        check_timeout(timeout, f"AsyncResult({self.id!r}).get()")
        if disable_sync_subtasks:
            assert_not_in_task(self.id)
        waiting = errors.translating_errors(f"wait for task {self.id}", uses="results")
        with waiting, _bounded(timeout):
            record = self._wait(timeout)
        return self._outcome(record, propagate)

    wait = get

    async def aget(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
    ) -> Any:
        """``get()`` for async code: the same wait with redis.asyncio, on the event loop.

        The same arguments, result and errors as ``get()`` (TimeoutError,
        the task's exception, TaskRevokedError, BrokerUnavailable, the
        refusal inside a task). The wait is ``get()``'s protocol (the waiter
        registered, the record read, then ``await`` BLPOP on this call's
        wake-up list: no polling), on a redis.asyncio client of the running
        loop (``broker/aio.py``), so any number of waits share one thread.
        """
        check_timeout(timeout, f"AsyncResult({self.id!r}).aget()")
        if disable_sync_subtasks:
            assert_not_in_task(self.id)
        from django_taskq.broker import aio

        client = await aio.client()
        if client is None:  # a cache alias without a URL: get() on a thread
            from asgiref.sync import sync_to_async

            wait = sync_to_async(self.get, thread_sensitive=False)
            return await wait(timeout=timeout, propagate=propagate, disable_sync_subtasks=False)
        with errors.translating_errors(f"wait for task {self.id}", uses="results"):
            record = await aio.bounded(self._await(client, timeout), timeout)
        return self._outcome(record, propagate)

    def _outcome(self, record: dict[str, Any], propagate: bool) -> Any:
        """What ``get()`` returns or raises for a ready ``record``."""
        status = record["status"]
        if status in states.PROPAGATE_STATES and propagate:
            if status == states.REVOKED:
                raise TaskRevokedError(
                    f"task {self.id} was revoked: {record.get('reason') or 'revoke() was called'}"
                )
            raise rebuild_exception(record.get("result"))
        if status in states.EXCEPTION_STATES:
            return rebuild_exception(record.get("result"))
        return record.get("result")

    # The waiting protocol, shared by get() and aget(): one pipeline that
    # registers this call's wake-up list in the waiters set (pushing the record
    # to it at once when it is ready) and blocks on that list. The script goes
    # by EVAL, not EVALSHA: a Redis that lost its scripts would otherwise fail
    # it only after the BLPOP beside it had blocked a whole slice.
    def _wakeup_key(self) -> str:
        """A wake-up list of this call's own, so any number of waiters all wake."""
        return keys.wakeup(self.id, uuid.uuid4().hex)

    def _queue_wait(self, pipe: Any, wakeup_key: str, remaining: float | None) -> None:
        """Queue on ``pipe``: register ``wakeup_key`` (wait_result.lua), then BLPOP on it."""
        result_key, waiters_key = keys.result_keys(self.id)
        ttl = int(((remaining or BLOCK_SLICE) + 5) * 1000)
        pipe.eval(scripts.source("wait_result"), 3, result_key, waiters_key, wakeup_key, ttl)
        pipe.blpop([wakeup_key], timeout=self._block(remaining))

    def _ready(self, raw: bytes | None) -> dict[str, Any] | None:
        """``raw`` as a record if it is ready (then cached), else None.

        Bytes that are no record raise DecodeError (decode_record()), as
        ``state`` does: a wait on them would end only if a worker happened to
        store this id's state over them, and otherwise never.
        """
        if raw is None:
            return None
        record = decode_record(self.id, raw)
        if record.get("status") not in states.READY_STATES:
            return None
        # This waiter's entry in the set is left to expire with it:
        # removing it would cost a round trip.
        self._cache = record
        return record

    def _woken(self, reply: Any) -> dict[str, Any] | None:
        """The ready record a wake-up carried, else None (read the record again).

        A wake-up from a worker older than this one is the bare ``1``, and
        one for a state that is not final (STARTED, progress) is not ready:
        both send the waiter back to read the record and wait again.
        """
        if not reply:
            return None
        value = reply[1]
        if value in (b"1", "1"):
            return None
        try:
            return self._ready(value)
        except (ValueError, AttributeError):  # not a record: read it from its key instead
            return None

    def _slice(self, deadline: float | None, timeout: float | None) -> float | None:
        """Seconds left (None: no timeout); TimeoutError once none are left."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"task {self.id} did not finish within {timeout}s")
        return remaining

    @staticmethod
    def _block(remaining: float | None) -> float:
        """How long one BLPOP blocks: a slice, so a long wait refreshes the set's expiry."""
        return max(BLOCK_SLICE if remaining is None else min(remaining, BLOCK_SLICE), 0.001)

    def _wait(self, timeout: float | None) -> dict[str, Any]:
        if self._cache is not None:
            return self._cache
        client = get_backend()
        wakeup_key = self._wakeup_key()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = self._slice(deadline, timeout)
            pipe = client.pipeline(transaction=False)
            self._queue_wait(pipe, wakeup_key, remaining)
            # Not a poll: the BLPOP returns the moment a ready record is pushed
            # to this waiter's list (by wait_result.lua, or by store_result.lua
            # when the state is stored), and what is pushed is the record.
            read, woken = pipe.execute()
            record = self._woken(woken) or self._ready(read)
            if record is not None:
                return record

    async def _await(self, client: Any, timeout: float | None) -> dict[str, Any]:
        """``_wait()`` on a redis.asyncio client: the same steps, awaited."""
        if self._cache is not None:
            return self._cache
        wakeup_key = self._wakeup_key()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = self._slice(deadline, timeout)
            pipe = client.pipeline(transaction=False)
            self._queue_wait(pipe, wakeup_key, remaining)
            read, woken = await pipe.execute()
            record = self._woken(woken) or self._ready(read)
            if record is not None:
                return record

    # -- acting --------------------------------------------------------------
    def forget(self) -> None:
        """Remove the stored result (and a Django task's attempts list)."""
        self._cache = None
        with errors.translating_errors(f"forget the result of task {self.id}", uses="results"):
            # One tag, one slot: a single DEL on Redis Cluster too.
            get_backend().delete(keys.result(self.id), keys.attempts(self.id))

    def revoke(self, terminate: bool = False, signal: str = "SIGKILL") -> None:
        """Stop the task: it will not start; with ``terminate`` a running one is stopped.

        In the prefork pool the child running the task gets ``signal``:
        SIGKILL (the default) kills it and it is replaced; SIGTERM or SIGINT
        raise :class:`~django_taskq.worker.terminate.Terminated` in the task,
        so its ``finally`` blocks run (the child is killed if the task has not
        ended after TASKQ_WORKER_TERMINATE_GRACE seconds). In the solo and
        threads pools Terminated is raised in the thread that runs the task,
        whatever the signal. The task ends REVOKED.
        """
        from django_taskq.control import revoke

        revoke([self.id], terminate=terminate, signal=signal)


class EagerResult(AsyncResult):
    """The result of a task run inline (``apply()`` or eager mode)."""

    def __init__(
        self,
        id: str,
        state: str,
        value: Any,
        traceback: str | None,
        task_name: str | None,
        exception: BaseException | None = None,
    ) -> None:
        super().__init__(id, task_name)
        self._state = state
        self._value = value
        self._traceback = traceback
        self._exception = exception

    def _record(self) -> dict[str, Any] | None:
        return {
            "status": self._state,
            "result": self._value,
            "traceback": self._traceback,
            "date_done": time.time(),
            "task": self.task_name,
        }

    @property
    def info(self) -> Any:
        if self._state in states.EXCEPTION_STATES:
            return self._exception
        return self._value

    def exists(self) -> bool:
        return True

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
    ) -> Any:
        if self._state in states.PROPAGATE_STATES and propagate and self._exception is not None:
            raise self._exception
        return self.info

    async def aget(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
    ) -> Any:
        """The value held here, as ``get()`` returns it (nothing to wait for)."""
        return self.get(timeout, propagate, interval, disable_sync_subtasks)

    def forget(self) -> None:
        """Nothing is stored for an eager result."""
