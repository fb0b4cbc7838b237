"""Unique tasks: a second send while the first is queued or running returns the first.

``@shared_task(unique_for=seconds)`` makes every ``delay()`` of the task
unique by its name and arguments; ``apply_async(unique_key=..., unique_for=...)``
makes one call unique under a key of the caller's choosing. While a task
holds its key (from its send until it ends for good, at most ``unique_for``
seconds after it is due), another send under the same key in the same queue
sends nothing and returns the AsyncResult of the task that holds it, with
``existing=True``. The check and the publish are one Lua step
(enqueue.lua), so concurrent sends never both publish; the worker gives the
key up when the task ends (broker/unique.py). docs/tasks.md, "Unique
tasks", says what holds when a task waits or runs longer than its key.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from typing import TYPE_CHECKING, Any

from django_taskq.conf import taskq_settings
from django_taskq.messages import Envelope, dumps

if TYPE_CHECKING:
    from django_taskq.result import AsyncResult
    from django_taskq.task import Task

#: The options of apply_async() that make a call unique.
OPTIONS = ("unique_key", "unique_for")


def check_unique_for(value: Any, where: str) -> float | None:
    """``value`` as seconds (a positive number) or None; TypeError/ValueError naming ``where``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{where}: unique_for takes a number of seconds (how long a send blocks the "
            f"next ones at most), not {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: unique_for must be a positive number of seconds, not {value!r}")
    return float(value)


def check_unique_key(value: Any, where: str) -> str | None:
    """``value`` if it is a usable unique key (a non-empty str) or None; TypeError otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(
            f"{where}: unique_key takes a non-empty str (say f'report:{{user_id}}'), not "
            f"{type(value).__name__} {value!r}"
        )
    return value


def refuse_elsewhere(task_name: str, where: str) -> TypeError:
    """The error for unique options given where they cannot be honoured (``where``)."""
    return TypeError(
        f"{task_name}: unique_key and unique_for are options of {task_name}.apply_async(), "
        f"delay() and send_task() only, not of {where}: a workflow owns the ids of its steps, and "
        "apply_async_on_commit() and apply_many() return ids before they know which task "
        "stands. Send the unique task with apply_async(unique_key=..., unique_for=...)."
    )


def _tagged(value: Any) -> Any:
    """The tagged JSON form of a value JSON has no type for (datetime, UUID, set, ...)."""
    if isinstance(value, set | frozenset):
        try:
            value = sorted(value)  # a set's order differs between processes
        except TypeError:
            value = list(value)
        return {"__taskq__": "set", "v": value}
    return json.loads(dumps(value))


_canonical = json.JSONEncoder(
    default=_tagged,
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
)


def default_key(
    task_name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    signature: inspect.Signature | None = None,
) -> str:
    """The task name and a stable hash of its call.

    With the function's ``signature``, the call is bound to its parameters,
    defaults filled in: ``f(1, b=2)``, ``f(a=1, b=2)`` and ``f(1)`` (when
    ``b`` defaults to 2) are one call. Keyword order never matters.
    """
    call: Any = [args, kwargs]
    if signature is not None:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # a call the function does not take (typing=False): hash it as sent
            pass
        else:
            bound.apply_defaults()
            call = dict(bound.arguments)
    try:
        text = _canonical.encode(call)
    except TypeError:  # keys sort_keys cannot order (ints beside strs): keep their order
        text = dumps(call)
    # surrogatepass: an argument holding a lone surrogate hashes too (same bytes otherwise).
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{task_name}:{digest}"


def key_ttl_ms(envelope: Envelope, unique_for: float) -> int:
    """How long the key of ``envelope`` lives: until it is due, then ``unique_for`` seconds.

    A countdown or ETA adds its wait, so a delayed task stays unique until
    it has had ``unique_for`` seconds to run. The key never outlives the
    task's ``expires``: a task dropped as expired must not block sends.
    """
    now = time.time()
    seconds = unique_for
    if envelope.eta is not None and envelope.eta > now:
        seconds += envelope.eta - now
    if envelope.expires is not None:
        seconds = min(seconds, envelope.expires - now)
    return max(1, math.ceil(seconds * 1000))


def apply_unique(
    task: Task,
    envelope: Envelope,
    unique_key: Any,
    unique_for: Any,
    serializer: str | None,
    compression: str | None = None,
) -> AsyncResult:
    """Send ``envelope`` as a unique task (``Task.apply_async`` with unique options).

    In eager mode (TASKQ_TASK_ALWAYS_EAGER) the options are checked and the
    task runs inline as any other: it has ended before the next send, so
    there is nothing to be unique against.
    """
    if taskq_settings.TASK_ALWAYS_EAGER:
        _resolve(task, unique_key, unique_for)
        return task._apply_envelope(envelope, propagate=taskq_settings.TASK_EAGER_PROPAGATES)
    return send_unique(task, envelope, unique_key, unique_for, serializer, compression)


def send_unique(
    task: Task,
    envelope: Envelope,
    unique_key: Any,
    unique_for: Any,
    serializer: str | None,
    compression: str | None = None,
) -> AsyncResult:
    """Publish ``envelope`` unless a task holds its unique key; the AsyncResult that stands.

    Never eager (``send_task()`` sends by name to the workers).
    """
    from django_taskq.broker import unique as broker_unique
    from django_taskq.result import AsyncResult

    name, seconds = _resolve(task, unique_key, unique_for)
    if name is None:
        name = default_key(task.name, envelope.args, envelope.kwargs, task._run_signature)
    envelope.headers[broker_unique.HEADER] = broker_unique.header(envelope.queue, name, seconds)
    holder = broker_unique.publish_unique(
        envelope, key_ttl_ms(envelope, seconds), serializer, compression
    )
    if holder is None:
        return AsyncResult(envelope.id, task_name=task.name)
    found = AsyncResult(holder, task_name=task.name)
    found.existing = True
    return found


def _resolve(task: Task, unique_key: Any, unique_for: Any) -> tuple[str | None, float]:
    """The call's unique key (None: the default) and seconds, checked."""
    where = f"{task.name}.apply_async()"
    name = check_unique_key(unique_key, where)
    seconds = check_unique_for(unique_for, where)
    if seconds is None:
        seconds = task.unique_for
    if seconds is None:
        raise TypeError(
            f"{where}: unique_key={name!r} needs unique_for=seconds (how long the key holds "
            f"at most), given here or as @shared_task(unique_for=...)"
        )
    return name, seconds
