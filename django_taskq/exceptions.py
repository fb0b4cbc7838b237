"""One rooted hierarchy of errors.

Every message says what happened, to which task or setting, and what to do.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured


class TaskqError(Exception):
    """Base of every django_taskq error."""


class ImproperlyConfiguredTaskq(TaskqError, ImproperlyConfigured):
    """A TASKQ_* setting is wrong; the message names it."""


class BrokerError(TaskqError):
    """Talking to Redis failed."""


class BrokerUnavailable(BrokerError):
    """Redis could not be reached, or did not answer in time.

    When sending failed, ``task_ids`` are the ids of the tasks being sent
    (``task_id`` the one id when there was one task, else None), and
    ``maybe_sent`` says whether they may be queued all the same: False only
    when no attempt got as far as writing the command (every attempt failed
    while connecting); True when an attempt may have been executed by Redis
    (its reply was lost to a timeout or a dropped connection). Sending again
    with the same ``task_id`` is safe: it is not queued twice.
    """

    def __init__(
        self, message: str, *, task_ids: Iterable[str] = (), maybe_sent: bool = True
    ) -> None:
        super().__init__(message)
        self.task_ids: tuple[str, ...] = tuple(task_ids)
        self.task_id: str | None = self.task_ids[0] if len(self.task_ids) == 1 else None
        self.maybe_sent = maybe_sent


class NotRegistered(TaskqError, KeyError):
    """No task of that name is registered in this process."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "task not registered"


class WorkerLostError(TaskqError):
    """The task's worker died while running it, TASKQ_MAX_DELIVERIES times."""


class TimeLimitExceeded(TaskqError):
    """The task ran past its hard time limit and its process was killed."""


class SoftTimeLimitExceeded(TaskqError):
    """Raised inside a task that ran past its soft time limit; it may clean up."""


class TaskRevokedError(TaskqError):
    """The task was revoked (by revoke() or because it expired)."""


class Retry(TaskqError):
    """Raised by ``Task.retry()``: the task is scheduled to run again.

    It is control flow, not a failure: the worker records state RETRY and
    acknowledges the current message once the next attempt is scheduled.
    """

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | None = None,
    ) -> None:
        self.exc = exc
        self.when = when
        super().__init__(message or f"Retry in {when}s: {exc!r}")


class Replace(Retry):
    """Raised by ``Task.replace()``: another task takes over this task id.

    Handled as a retry whose next message is the replacement: the worker
    records state RETRY for this run, publishes the replacement once, and
    acks the current message in the same settle step.
    """

    def __init__(self, task: str) -> None:
        super().__init__(f"replaced by {task}", when=0)


class MaxRetriesExceededError(TaskqError):
    """``retry()`` was called after max_retries attempts and had no exc to raise."""


class Reject(TaskqError):
    """Raise in a task to reject its message: it is dead-lettered, not retried."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason)


class TaskError(TaskqError):
    """A remote task failed with an exception type this process will not rebuild.

    A stored exception is rebuilt only from a class that is registered with
    ``register_exception`` or whose module this process has already imported
    (nothing is imported because Redis names it). ``remote_type`` holds the
    dotted name of the original exception type.
    """

    def __init__(self, remote_type: str, message: str) -> None:
        self.remote_type = remote_type
        super().__init__(f"{remote_type}: {message}")


class TimeoutError(TaskqError, builtins.TimeoutError):
    """``AsyncResult.get()`` waited longer than its timeout."""


class EncodeError(TaskqError, TypeError):
    """An argument of a task call cannot be encoded into a message."""


class DecodeError(TaskqError, ValueError):
    """A message could not be decoded (malformed, wrong content type)."""


class ChordError(TaskqError):
    """A chord's body did not run because a header task failed; the message names it."""


E = TypeVar("E", bound=type[Exception])

_registered: dict[str, type[Exception]] = {}


def register_exception(cls: E, name: str | None = None) -> E:
    """Let results rebuild ``cls`` when a stored failure names it; returns ``cls``.

    Usable as a class decorator. ``name`` is the dotted name it is stored
    under (default ``module.QualName``, as a worker stores it); give an old
    name to rebuild results stored before the class moved. Classes whose
    module is imported in this process are found without registering; a
    registered class is found even when its name does not lead to it (a
    class made in a function, a moved class).
    """
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        raise TypeError(f"register_exception() needs an Exception subclass, not {cls!r}")
    _registered[name or f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def registered_exception(name: str) -> type[Exception] | None:
    """The class registered under ``name``, if any."""
    return _registered.get(name)


class Terminated(BaseException):
    """Raised in a running task by ``revoke(terminate=True)`` (worker/terminate.py).

    A BaseException, as SystemExit is, so a task's ``except Exception`` does
    not swallow it; its ``finally`` blocks and context managers still run.
    """

    def __init__(self, signame: str = "SIGTERM") -> None:
        super().__init__(f"terminated by revoke(terminate=True) with {signame}")
        self.signame = signame
