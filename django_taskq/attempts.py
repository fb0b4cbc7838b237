"""The attempts of a Django task: the worker that started each, the error each failed with.

Django's ``TaskResult`` has one error per failed attempt (``errors``) and
one worker id per attempt (``worker_ids``; its ``attempts`` is their
number). A result record holds one state, the last, so a Django task's
records carry an entry for a list beside them (``keys.attempts``, in the
task's hash tag), appended by store_result.lua in the same call that
writes the record:

- a STARTED record (every attempt of a Django task writes one: the backend
  registers its tasks with ``track_started``) adds ``{"w": worker}``;
- a RETRY or FAILURE record adds ``{"w": worker, "exc": class path,
  "tb": traceback}``;
- any other record of a Django task (SUCCESS, REVOKED, ...) adds nothing
  and gives the list the record's expiry (``TASKQ_RESULT_EXPIRES``).

So the entries ride on writes the worker makes anyway: no round trip is
added, and a success writes no entry (its worker started it). A refused
write (a final state was stored already) adds none either. A plain
``@shared_task`` has no list and its records are written as before.

The list is capped (``cap()``): the newest entries of ``max_retries`` + 1
attempts and ``MARGIN`` more (an attempt a crash cut short, redelivered,
is an attempt too). ``AsyncResult.forget()`` deletes it with the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django_taskq import states
from django_taskq.django_tasks import HEADER as DJANGO_TASK

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.trace import Outcome

#: Attempts kept beyond ``max_retries`` + 1: redeliveries after crashes.
MARGIN = 10
#: Retries counted for the cap of a task that retries forever (``max_retries=None``).
UNBOUNDED = 100
#: The class path of a retry that named no exception (``self.retry()``).
RETRY_WITHOUT_EXC = "django_taskq.exceptions.Retry"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a record's write adds to its task's attempts list: an entry ("": none), the cap."""

    entry: str
    cap: int


def cap(task_name: str) -> int:
    """How many entries the list of ``task_name`` keeps (two an attempt at most)."""
    from django_taskq.registry import registry

    task = registry.get(task_name) if task_name in registry else None
    retries = getattr(task, "max_retries", None)
    counted = UNBOUNDED if not isinstance(retries, int) else min(max(retries, 0), UNBOUNDED)
    return 2 * (counted + 1 + MARGIN)


def of(
    envelope: Envelope, outcome: Outcome | None, state: str, worker: str | None
) -> Attempt | None:
    """The attempt entry a record of ``envelope`` in ``state`` carries; None for a plain task."""
    if not envelope.headers or not envelope.headers.get(DJANGO_TASK):
        return None
    entry = ""
    if state == states.STARTED:
        entry = json.dumps({"w": worker or ""})
    elif state in (states.RETRY, states.FAILURE) and outcome is not None:
        exc = outcome.exception
        path = RETRY_WITHOUT_EXC if exc is None else class_path(type(exc))
        entry = json.dumps({"w": worker or "", "exc": path, "tb": outcome.traceback or ""})
    return Attempt(entry, cap(envelope.task))


def class_path(cls: type) -> str:
    """``module.QualName`` of an exception class (``builtins.ValueError`` too)."""
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class Attempts:
    """A Django task's attempts list, read back."""

    #: The worker of each attempt that started, oldest first.
    workers: list[str]
    #: (exception class path, traceback) of each failed attempt, oldest first.
    errors: list[tuple[str, str]]
    #: Whether the newest entry is a failure (the final FAILURE has its entry).
    ends_in_failure: bool


def read(raw: Iterable[bytes | str]) -> Attempts:
    """The entries of an attempts list (LRANGE 0 -1); entries that cannot be read are skipped."""
    workers: list[str] = []
    errors: list[tuple[str, str]] = []
    last_failed = False
    for item in raw:
        try:
            found: Any = json.loads(item)
        except ValueError:
            continue
        if not isinstance(found, dict):
            continue
        if "exc" in found:
            errors.append((str(found["exc"]), str(found.get("tb") or "")))
            last_failed = True
        else:
            workers.append(str(found.get("w") or ""))
            last_failed = False
    return Attempts(workers, errors, last_failed)
