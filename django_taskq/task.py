"""Tasks: ``@shared_task``, ``Task`` and the per-call ``Request``.

A Task wraps a function. Calling it runs the function inline; ``delay()`` and
``apply_async()`` send a message for a worker; ``apply()`` runs it eagerly
through the same code path a worker uses. Options are checked when the task
is declared, so a wrong option fails at import, not in a worker at 3 a.m.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import inspect
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, overload

from django.conf import settings

from django_taskq import request as requests
from django_taskq import states
from django_taskq.arguments import check as check_call
from django_taskq.arguments import positional_range
from django_taskq.broker.keys import QUEUE_NAME
from django_taskq.codecs import check_option as check_codec
from django_taskq.codecs import default_serializer
from django_taskq.conf import taskq_settings
from django_taskq.envelope_checks import MAX_ID_BYTES
from django_taskq.exceptions import MaxRetriesExceededError, Retry
from django_taskq.messages import Envelope, check_encodable, new_id
from django_taskq.registry import registry
from django_taskq.request import Request

if TYPE_CHECKING:
    from django_taskq import canvas
    from django_taskq.canvas import Signature
    from django_taskq.result import AsyncResult, EagerResult

#: Marks an option left out, where None has a meaning of its own.
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()

#: Options @shared_task accepts, with their defaults (None: from settings,
#: except max_retries, where None means "retry forever" as in Celery).
TASK_OPTIONS: dict[str, Any] = {
    "name": None,
    "bind": False,
    "queue": None,
    "priority": None,
    "max_retries": UNSET,
    "default_retry_delay": None,
    "autoretry_for": (),
    "dont_autoretry_for": (),
    "retry_kwargs": None,  # Celery's: {"max_retries": n, "countdown": s}
    "throws": (),  # expected errors: logged without a traceback
    "retry_backoff": False,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "time_limit": None,
    "soft_time_limit": None,
    "rate_limit": None,
    "ignore_result": None,
    "track_started": None,
    "acks_late": None,
    "expires": None,
    "serializer": None,
    "compression": None,
    "result_compression": None,
    "typing": True,
    "unique_for": None,  # seconds; see unique.py
}


#: Latest instant a message may name, in epoch seconds (about the year 33,600):
#: its milliseconds stay exact in a double and inside Redis's integers, which
#: a countdown of 1e20 overflowed in the enqueue script (a ResponseError).
MAX_EPOCH = 1e12


#: Queue names a call has checked (a set lookup, not a regex match, per call).
_QUEUE_NAMES_SEEN: set[str] = set()


def _check_queue(queue: Any, task: str) -> None:
    """ValueError unless ``queue`` is a name a worker can consume (-Q refuses the others).

    A message sent to another name would wait for ever. A good name is
    remembered (up to 1,024 of them), so the common call only looks it up.
    """
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
        raise ValueError(
            f"{task}: queue must be a name of 1-200 characters without whitespace, "
            f"'{{' or '}}', not {queue!r}"
        )
    if len(_QUEUE_NAMES_SEEN) < 1024:
        _QUEUE_NAMES_SEEN.add(queue)


def _check_limits(time_limit: Any, soft_time_limit: Any, task: str) -> None:
    for what, limit in (("time_limit", time_limit), ("soft_time_limit", soft_time_limit)):
        if limit is not None and _seconds(limit, what, task) <= 0:
            raise ValueError(f"{task}: {what} must be a number of seconds > 0, or None")


def _instant(value: float | None, what: str, task: str) -> float | None:
    """``value`` (epoch seconds) if it is a usable instant; ValueError naming ``what`` if not."""
    if value is not None and not (math.isfinite(value) and abs(value) < MAX_EPOCH):
        raise ValueError(
            f"{task}: {what} is out of range ({value!r}): give a time before the year 30,000"
        )
    return value


def _seconds(value: Any, what: str, task: str) -> float:
    """A number of seconds given as an option; TypeError or ValueError naming ``what`` if not."""
    kind = type(value)
    if kind is float and value - value == 0.0:  # the common case: finite (NaN and inf are not)
        return value  # type: ignore[no-any-return]
    if kind is bool or not isinstance(value, int | float):
        raise TypeError(f"{task}: {what} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ValueError(f"{task}: {what} must be a finite number of seconds, not {shown}")
    return seconds


def _to_epoch(value: dt.datetime | float | None, what: str, task: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            from django.utils import timezone

            if settings.USE_TZ:
                _warn_naive(value, what, task, timezone.get_current_timezone_name())
            value = timezone.make_aware(value)
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _seconds(value, what, task)
    raise TypeError(f"{task}: {what} must be a datetime or a number, not {type(value).__name__}")


def _warn_naive(value: dt.datetime, what: str, task: str, zone: str) -> None:
    """A RuntimeWarning at the caller's line (once per line, as Django warns of naive datetimes).

    ``datetime.utcnow() + ...`` under a TIME_ZONE other than UTC would
    otherwise run hours early or late, silently.
    """
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is _to_epoch's line
    while frame is not None and frame.f_code.co_filename.startswith(package):
        level, frame = level + 1, frame.f_back  # type: ignore[assignment]
    warnings.warn(
        f"{task}: {what}={value.isoformat()} is a naive datetime while time zone support "
        f"is active; it is read in the current time zone ({zone}). Pass an aware datetime "
        f"(django.utils.timezone.now() + timedelta(...)) or countdown=seconds.",
        RuntimeWarning,
        stacklevel=level,
    )


#: The methods a Task subclass may override to run code around each run.
HOOKS = ("before_start", "on_success", "on_failure", "on_retry", "after_return")


def _queue_alias(task: str, queue: str | None, extra: dict[str, Any]) -> str | None:
    """Celery's ``routing_key`` and ``exchange`` taken as ``queue`` (removed from ``extra``).

    On Redis, Celery routes by queue name; a ported call that still names
    the routing key or the exchange sends to the queue of that name, with a
    DeprecationWarning saying to write ``queue=``.
    """
    import warnings

    for name in ("routing_key", "exchange"):
        if name not in extra:
            continue
        value = extra.pop(name)
        if value is None:
            continue
        warnings.warn(
            f"{task}.apply_async({name}={value!r}) is Celery's; it is taken as "
            f"queue={value!r}. Write queue= instead.",
            DeprecationWarning,
            stacklevel=4,
        )
        if queue is None:
            queue = value
    return queue


def _or_setting(value: Any, setting: str) -> Any:
    """A task's own option, or the TASKQ_ setting that defaults it when unset (None)."""
    return getattr(taskq_settings, setting) if value is None else value


def route(task_name: str) -> dict[str, Any]:
    """The route in TASKQ_ROUTES for ``task_name``: {"queue": ..., "priority": ...}."""
    routes: dict[str, Any] = taskq_settings.ROUTES or {}
    for pattern, target in routes.items():
        if pattern == task_name or fnmatch.fnmatchcase(task_name, pattern):
            return {"queue": target} if isinstance(target, str) else dict(target)
    return {}


#: Most children a result record lists (a task that fans out to a million
#: tasks must not store a million ids in its result).
CHILDREN_LIMIT = 1000


def check_priority(priority: Any, where: str) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise ValueError(
            f"{where}: priority must be an integer from 0 to 9 (9 runs first), not {priority!r}"
        )
    return priority


def check_task_id(task_id: Any, where: str) -> str:
    """``task_id`` if a worker can take it; else a ValueError naming the task and the id.

    A worker dead-letters an entry whose id is not 1 to 255 bytes of UTF-8
    without a newline (worker/entries.py): such an id is refused here, when
    it is given, rather than accepted and lost at the worker. Ids of up to
    63 characters fit whatever they hold, so the common case encodes nothing.
    """
    if type(task_id) is not str:
        if isinstance(task_id, uuid.UUID):  # Celery's JSON takes one; so does this
            return str(task_id)
        raise TypeError(f"{where}: task_id must be a string, not {type(task_id).__name__}")
    if "\n" in task_id:
        raise ValueError(f"{where}: task_id must not contain a newline: {task_id[:80]!r}")
    if len(task_id) * 4 > MAX_ID_BYTES:
        try:
            size = len(task_id.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError(
                f"{where}: task_id must be valid Unicode text (it holds a lone surrogate): "
                f"{task_id[:80]!r}"
            ) from None
        if size > MAX_ID_BYTES:
            raise ValueError(
                f"{where}: task_id is {size} bytes in UTF-8; a worker takes at most "
                f"{MAX_ID_BYTES} (shorten it, or hash it: hashlib.sha256(...).hexdigest())"
            )
    return task_id


def _check_task_options(where: str, opts: dict[str, Any]) -> None:
    """TypeError or ValueError naming the first option of a task declaration that is wrong.

    Checked when the task is declared, not at each call: a negative
    ``time_limit`` or a string ``queue`` would otherwise fail every call,
    or reach a worker that dead-letters the message.
    """
    for option in ("time_limit", "soft_time_limit"):
        value = opts[option]
        if value is not None and _seconds(value, option, where) <= 0:
            raise ValueError(f"{where}: {option} must be a number of seconds > 0, or None")
    if opts["queue"] is not None:
        from django_taskq.broker.keys import check_queue_name

        check_queue_name(opts["queue"], where)
    retries = opts["max_retries"]
    given = retries is not UNSET and retries is not None
    if given and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        raise ValueError(
            f"{where}: max_retries must be a whole number >= 0, or None for no limit, "
            f"not {retries!r}"
        )
    for option in ("default_retry_delay", "retry_backoff_max"):
        value = opts[option]
        if value is not None and _seconds(value, option, where) < 0:
            raise ValueError(f"{where}: {option} must be a number of seconds >= 0")
    expires = opts["expires"]
    if expires is not None and not isinstance(expires, dt.timedelta | dt.datetime):
        _seconds(expires, "expires", where)


class Task:
    """A function that can run in a worker. Made by ``@shared_task``.

    A subclass, given as ``@shared_task(base=MyTask)``, may override the
    hooks (``before_start``, ``on_success``, ``on_failure``, ``on_retry``,
    ``after_return``) and set options as class attributes
    (``max_retries = 5``): the defaults of its tasks, below the options
    given to ``@shared_task``.
    """

    #: Options a subclass sets as class attributes (see __init_subclass__).
    class_options: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = dict(cls.class_options)  # a parent subclass's, inherited
        for name in TASK_OPTIONS:
            if name == "name" or name not in cls.__dict__:
                continue
            found[name] = cls.__dict__[name]
            if isinstance(getattr(Task, name, None), property):
                delattr(cls, name)  # the value is read through Task's property
        cls.class_options = found

    def __init__(self, func: Callable[..., Any], **options: Any) -> None:
        unknown = set(options) - set(TASK_OPTIONS)
        if unknown:
            from django_taskq.celery_names import option_hints

            raise TypeError(
                f"@shared_task on {func.__module__}.{func.__qualname__}: unknown option(s) "
                f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(TASK_OPTIONS))}"
                + option_hints(unknown, "task")
            )
        opts = {**TASK_OPTIONS, **self.class_options, **options}
        where = f"@shared_task on {func.__module__}.{func.__qualname__}"
        retry_kwargs = opts["retry_kwargs"] or {}
        if not isinstance(retry_kwargs, dict) or set(retry_kwargs) - {"max_retries", "countdown"}:
            raise TypeError(
                f"{where}: retry_kwargs takes a dict with 'max_retries' and/or 'countdown', "
                f"not {retry_kwargs!r}"
            )
        if "max_retries" in retry_kwargs and "max_retries" not in options:
            opts["max_retries"] = retry_kwargs["max_retries"]
        if "countdown" in retry_kwargs and "default_retry_delay" not in options:
            opts["default_retry_delay"] = retry_kwargs["countdown"]
        self.run = func
        #: An ``async def`` task: a consumer's async lane may run it beside others (worker/lane.py).
        self.is_async: bool = inspect.iscoroutinefunction(func)
        self.name: str = opts["name"] or f"{func.__module__}.{func.__name__}"
        self.bind: bool = bool(opts["bind"])
        self.queue: str | None = opts["queue"]
        self.priority: int | None = (
            None if opts["priority"] is None else check_priority(opts["priority"], self.name)
        )
        self._max_retries = opts["max_retries"]
        self._default_retry_delay = opts["default_retry_delay"]
        self.autoretry_for: tuple[type[BaseException], ...] = tuple(opts["autoretry_for"])
        self.dont_autoretry_for: tuple[type[BaseException], ...] = tuple(opts["dont_autoretry_for"])
        self.throws: tuple[type[BaseException], ...] = tuple(opts["throws"])
        self.retry_backoff: bool | int = opts["retry_backoff"]
        self.retry_backoff_max: float = opts["retry_backoff_max"]
        self.retry_jitter: bool = bool(opts["retry_jitter"])
        self.time_limit: float | None = opts["time_limit"]
        self.soft_time_limit: float | None = opts["soft_time_limit"]
        self.rate_limit: str | None = opts["rate_limit"]
        self._ignore_result = opts["ignore_result"]
        self._track_started = opts["track_started"]
        self._acks_late = opts["acks_late"]
        self.expires: float | dt.timedelta | None = opts["expires"]
        self.serializer: str | None = opts["serializer"]
        self.compression: str | None = opts["compression"]
        self.result_compression: str | None = opts["result_compression"]
        for option in ("serializer", "compression", "result_compression"):
            check_codec(self.name, option, opts[option])
        _check_task_options(where, opts)
        self.typing: bool = bool(opts["typing"])
        self.unique_for: float | None = None
        if opts["unique_for"] is not None:
            from django_taskq.unique import check_unique_for

            self.unique_for = check_unique_for(opts["unique_for"], f"@shared_task {self.name}")
        for exc_type in (*self.autoretry_for, *self.dont_autoretry_for, *self.throws):
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise TypeError(
                    f"{self.name}: autoretry_for, dont_autoretry_for and throws take exception "
                    f"classes, not {exc_type!r}"
                )
        if self.rate_limit is not None:
            from django_taskq.ratelimit import parse_rate

            parse_rate(self.rate_limit, self.name)
        #: The hooks a subclass overrides (execute() calls only those).
        self.hooks = frozenset(
            name for name in HOOKS if getattr(type(self), name) is not getattr(Task, name)
        )
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__module__ = func.__module__
        self.__qualname__ = func.__qualname__
        self.__wrapped__ = func

    # -- hooks (override in a base class: @shared_task(base=MyTask)) ----------------
    def before_start(self, task_id: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Called in the worker just before the task runs; raising fails the task."""

    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> None:
        """Called after the task returned ``retval``."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        einfo: str | None,
    ) -> None:
        """Called after the task failed with ``exc`` (``einfo``: its formatted traceback)."""

    def on_retry(
        self,
        exc: BaseException | None,
        task_id: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        einfo: str | None,
    ) -> None:
        """Called after the task asked to be retried (``exc``: why, if it said)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        einfo: str | None,
    ) -> None:
        """Called after every run, whatever its end (``status``: the state it ended in)."""

    def __repr__(self) -> str:
        return f"<@task {self.name}>"

    # -- option defaults that come from settings ----------------------------
    @property
    def max_retries(self) -> int | None:
        if self._max_retries is UNSET:
            value: int | None = taskq_settings.TASK_DEFAULT_MAX_RETRIES
            return value
        return None if self._max_retries is None else int(self._max_retries)

    @property
    def default_retry_delay(self) -> float:
        return float(_or_setting(self._default_retry_delay, "TASK_DEFAULT_RETRY_DELAY"))

    @property
    def ignore_result(self) -> bool:
        return bool(_or_setting(self._ignore_result, "TASK_IGNORE_RESULT"))

    @property
    def track_started(self) -> bool:
        return bool(_or_setting(self._track_started, "TASK_TRACK_STARTED"))

    @property
    def acks_late(self) -> bool:
        return bool(_or_setting(self._acks_late, "TASK_ACKS_LATE"))

    # -- the current request (per thread) ----------------------------------
    @property
    def request(self) -> Request:
        """This task's running call in this thread, or an empty one (called directly)."""
        current = requests.current_request()
        if current is not None and current.task == self.name:
            return current
        return Request(task=self.name)

    def push_request(self, request: Request) -> None:
        """Make ``request`` current (Celery's name for it; see django_taskq.request)."""
        requests.push(request)

    def pop_request(self) -> None:
        requests.pop()

    # -- calling ------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task inline in this process, like calling the function."""
        if self.bind:
            return self.run(self, *args, **kwargs)
        return self.run(*args, **kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Queue up the task to be executed by a worker."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """``delay()`` for async code: the send runs on a worker thread, not in the event loop."""
        return await self.aapply_async(args, kwargs)

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult:
        """``apply_async()`` for async code (an ``async def`` view, an async task).

        The send is the same call as ``apply_async`` (its checks, its
        publish), run by ``asgiref``'s ``sync_to_async`` on a thread, so the
        event loop goes on while Redis answers.
        """
        from asgiref.sync import sync_to_async

        send = sync_to_async(self.apply_async, thread_sensitive=False)
        return await send(args, kwargs, **options)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: dt.datetime | float | None = None,
        expires: dt.datetime | dt.timedelta | float | None = None,
        queue: str | None = None,
        priority: int | None = None,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        link: Signature | Sequence[Signature] | None = None,
        link_error: Signature | Sequence[Signature] | None = None,
        ignore_result: bool | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        serializer: str | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
        compression: str | None = None,
        **extra: Any,
    ) -> AsyncResult:
        """Send the task with options; return its AsyncResult.

        ``unique_key``/``unique_for`` (or ``@shared_task(unique_for=)``): while
        a task sent under the same key is queued or running, send nothing and
        return its AsyncResult, with ``existing=True`` (django_taskq/unique.py).
        """
        unique = unique_key is not None or unique_for is not None or self.unique_for is not None
        envelope = self.build_envelope(
            args,
            kwargs,
            # A plain send encodes the body at once, and a failed JSON encoding
            # names the argument (Envelope.encode_json): no separate check first.
            json_check=unique or bool(taskq_settings.TASK_ALWAYS_EAGER),
            countdown=countdown,
            eta=eta,
            expires=expires,
            queue=queue,
            priority=priority,
            task_id=task_id,
            headers=headers,
            link=link,
            link_error=link_error,
            ignore_result=ignore_result,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            **extra,
        )
        if unique:
            from django_taskq.unique import apply_unique

            check_codec(f"{self.name}.apply_async()", "serializer", serializer)
            check_codec(f"{self.name}.apply_async()", "compression", compression)
            return apply_unique(self, envelope, unique_key, unique_for, serializer, compression)
        if taskq_settings.TASK_ALWAYS_EAGER:
            return self._apply_envelope(envelope, propagate=taskq_settings.TASK_EAGER_PROPAGATES)
        return self.send_envelope(envelope, serializer, compression)

    def send_envelope(
        self, envelope: Envelope, serializer: str | None = None, compression: str | None = None
    ) -> AsyncResult:
        """Publish a built message to Redis (never eagerly); return its AsyncResult."""
        from django_taskq.broker.connection import backend_is_broker
        from django_taskq.broker.publish import publish, publish_deadline
        from django_taskq.result import AsyncResult

        if serializer is not None or compression is not None:
            check_codec(f"{self.name}.apply_async()", "serializer", serializer)
            check_codec(f"{self.name}.apply_async()", "compression", compression)
        serializer = serializer or self.serializer
        if backend_is_broker():  # one round trip: publish() bounds it
            publish(envelope, serializer=serializer, compression=compression)
        else:
            with publish_deadline():  # one bound for the message and its PENDING record
                publish(envelope, serializer=serializer, compression=compression)
        return AsyncResult(envelope.id, task_name=self.name)

    def build_envelope(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: dt.datetime | float | None = None,
        expires: dt.datetime | dt.timedelta | float | None = None,
        queue: str | None = None,
        priority: int | None = None,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        link: Any = None,
        link_error: Any = None,
        ignore_result: bool | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        parent_id: str | None = None,
        root_id: str | None = None,
        group_id: str | None = None,
        group_index: int | None = None,
        chord: dict[str, Any] | None = None,
        retries: int = 0,
        json_check: bool = True,
        **extra: Any,
    ) -> Envelope:
        """The message for one call, with every option resolved and checked.

        ``json_check=False`` leaves out the check that JSON can encode the
        arguments, for a caller that encodes the message right away (the
        encoding names a bad argument the same way).
        """
        if extra:
            queue = _queue_alias(self.name, queue, extra)
        if extra:
            from django_taskq.celery_names import option_hints
            from django_taskq.unique import OPTIONS, refuse_elsewhere

            if set(OPTIONS) & set(extra):
                raise refuse_elsewhere(self.name, "a workflow or this call")

            raise TypeError(
                f"{self.name}.apply_async() got unknown option(s) {', '.join(sorted(extra))}"
                + option_hints(extra, "call")
            )
        if args is not None and not isinstance(args, list | tuple):
            raise TypeError(
                f"{self.name}.apply_async(): args must be a list or tuple, not "
                f"{type(args).__name__} (did you mean args=({args!r},)?)"
            )
        if kwargs is not None and not isinstance(kwargs, dict):
            raise TypeError(f"{self.name}.apply_async(): kwargs must be a dict")
        arg_list = list(args or ())
        kwarg_dict = dict(kwargs or {})
        if self.typing:
            self._check_signature(arg_list, kwarg_dict)
        if json_check and (self.serializer or default_serializer()) == "json":
            # Others are checked by their own encoder, at the send (codecs.py).
            check_encodable(self.name, arg_list, kwarg_dict)

        now = time.time()
        eta_ts = _to_epoch(eta, "eta", self.name)
        if countdown is not None:
            eta_ts = now + _seconds(countdown, "countdown", self.name)
        if eta_ts is not None:
            eta_ts = _instant(eta_ts, "countdown" if countdown is not None else "eta", self.name)
        if expires is None:
            expires = self.expires
        if isinstance(expires, dt.timedelta):
            expires_ts: float | None = now + expires.total_seconds()
        elif isinstance(expires, int | float) and not isinstance(expires, bool):
            expires_ts = now + _seconds(expires, "expires", self.name)
        else:
            expires_ts = _to_epoch(expires, "expires", self.name)
        if expires_ts is not None:
            expires_ts = _instant(expires_ts, "expires", self.name)
        if time_limit is None:
            time_limit = self.time_limit
        if soft_time_limit is None:
            soft_time_limit = self.soft_time_limit
        if time_limit is not None or soft_time_limit is not None:
            _check_limits(time_limit, soft_time_limit, self.name)
        if headers is not None and not isinstance(headers, dict):
            raise TypeError(f"{self.name}: headers must be a dict, not {type(headers).__name__}")
        try:
            links, error_links = _sig_dicts(link), _sig_dicts(link_error)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{self.name}: link and link_error take a signature or a list of signatures "
                f"(task.s(...)), not {exc}"
            ) from None

        routed = route(self.name)
        queue = queue or routed.get("queue") or self.queue or taskq_settings.DEFAULT_QUEUE
        if type(queue) is not str or queue not in _QUEUE_NAMES_SEEN:
            _check_queue(queue, self.name)
        if priority is None:
            priority = routed.get("priority")
        if priority is None:
            priority = self.priority
        if priority is None:
            priority = taskq_settings.DEFAULT_PRIORITY
        priority = check_priority(priority, self.name)

        current = requests.current_request()
        task_id = check_task_id(task_id, self.name) if task_id else new_id()
        # A call made inside a running task is its child, unless it is that
        # task again (a retry, a replacement: the same id).
        if parent_id is None and current is not None and current.id and current.id != task_id:
            parent_id = current.id
            root_id = root_id or current.root_id
            if current.children is None:  # its result lists what it sent (.children)
                current.children = []
            if len(current.children) < CHILDREN_LIMIT:
                current.children.append(task_id)
        return Envelope(
            id=task_id,
            task=self.name,
            args=arg_list,
            kwargs=kwarg_dict,
            queue=queue,
            priority=priority,
            retries=retries,
            eta=eta_ts,
            expires=expires_ts,
            headers=dict(headers or {}),
            root_id=root_id,
            parent_id=parent_id,
            group_id=group_id,
            group_index=group_index,
            ignore_result=self.ignore_result if ignore_result is None else bool(ignore_result),
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            link=links,
            link_error=error_links,
            chord=chord,
        )

    @functools.cached_property
    def _run_signature(self) -> inspect.Signature | None:
        """The parameters a caller passes, computed once (``delay()`` checks arguments with it).

        For ``bind=True`` the first parameter (the task itself) is left out.
        """
        try:
            sig = inspect.signature(self.run)
        except (TypeError, ValueError):  # pragma: no cover - builtins
            return None
        if self.bind:
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        return sig

    @functools.cached_property
    def _positional_range(self) -> tuple[int, float] | None:
        """``arguments.positional_range`` of the run signature, computed once."""
        sig = self._run_signature
        return None if sig is None else positional_range(sig)

    def _check_signature(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        sig = self._run_signature
        if sig is None:
            return
        if not kwargs:  # the common call: positional arguments only
            bounds = self._positional_range
            if bounds is not None and bounds[0] <= len(args) <= bounds[1]:
                return
        error = check_call(sig, args, kwargs, self.name)
        if error is not None:
            raise TypeError(error)

    def delay_many(self, calls: Iterable[Sequence[Any]]) -> list[AsyncResult]:
        """Send one call per argument tuple in a single pipelined round trip."""
        return self.apply_many((args, None) for args in calls)

    def apply_many(
        self,
        calls: Iterable[tuple[Sequence[Any] | None, dict[str, Any] | None]],
        **options: Any,
    ) -> list[AsyncResult]:
        """Send many ``(args, kwargs)`` calls with shared options in one round trip.

        Every call is checked first (signature, JSON encoding), so a bad one
        sends nothing. In eager mode each call runs inline instead.
        """
        if self.unique_for is not None:
            from django_taskq.unique import refuse_elsewhere

            raise refuse_elsewhere(self.name, "apply_many()")
        # Sent: publish_many() encodes every body before it sends any, and a
        # failed JSON encoding names the argument, so no separate check first.
        options.setdefault("json_check", bool(taskq_settings.TASK_ALWAYS_EAGER))
        envelopes = [self.build_envelope(*self._pair(call), **options) for call in calls]
        if taskq_settings.TASK_ALWAYS_EAGER:
            propagate = taskq_settings.TASK_EAGER_PROPAGATES
            return [self._apply_envelope(e, propagate=propagate) for e in envelopes]
        from django_taskq.broker.publish import publish_deadline, publish_many
        from django_taskq.result import AsyncResult

        with publish_deadline():
            publish_many(envelopes)
        return [AsyncResult(e.id, task_name=self.name) for e in envelopes]

    def _pair(self, call: Any) -> tuple[Any, Any]:
        """One ``apply_many()`` call as (args, kwargs); TypeError naming the task if it is not."""
        if isinstance(call, tuple | list) and len(call) == 2:
            return call[0], call[1]
        raise TypeError(
            f"{self.name}.apply_many(): each call is an (args, kwargs) pair, not {call!r:.80}"
        )

    def delay_on_commit(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Send the task when the current transaction commits; the id is known now."""
        return self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        using: str | None = None,
        **options: Any,
    ) -> AsyncResult:
        """``apply_async`` inside ``transaction.on_commit``; returns the AsyncResult now."""
        from django.db import transaction

        from django_taskq.result import AsyncResult

        if self.unique_for is not None:
            from django_taskq.unique import refuse_elsewhere

            raise refuse_elsewhere(self.name, "apply_async_on_commit()")
        task_id = options.pop("task_id", None) or new_id()
        # Build now so a bad argument fails here, not after the commit.
        self.build_envelope(args, kwargs, task_id=task_id, **options)
        transaction.on_commit(
            lambda: self.apply_async(args, kwargs, task_id=task_id, **options), using=using
        )
        return AsyncResult(task_id, task_name=self.name)

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        throw: bool | None = None,
        **options: Any,
    ) -> EagerResult:
        """Run the task here and now, as a worker would; return an EagerResult."""
        options.pop("countdown", None)
        options.pop("eta", None)
        envelope = self.build_envelope(args, kwargs, task_id=task_id, **options)
        propagate = taskq_settings.TASK_EAGER_PROPAGATES if throw is None else throw
        return self._apply_envelope(envelope, propagate=propagate)

    def _apply_envelope(self, envelope: Envelope, propagate: bool) -> EagerResult:
        from django_taskq.result import EagerResult
        from django_taskq.trace import run_eager

        outcome = run_eager(self, envelope)
        if propagate and outcome.exception is not None and outcome.state == states.FAILURE:
            raise outcome.exception
        return EagerResult(
            envelope.id,
            outcome.state,
            outcome.value,
            outcome.traceback,
            self.name,
            exception=outcome.exception,
        )

    def AsyncResult(self, task_id: str) -> AsyncResult:
        from django_taskq.result import AsyncResult

        return AsyncResult(task_id, task_name=self.name)

    # -- inside a running task ---------------------------------------------
    def retry(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: dt.datetime | float | None = None,
        countdown: float | None = None,
        max_retries: Any = UNSET,
        **options: Any,
    ) -> Retry:
        """Schedule this task to run again and raise ``Retry``.

        The next attempt goes into the delayed set when the worker acks the
        current message (or runs inline in eager mode). After ``max_retries``
        attempts, ``exc`` is raised instead (or MaxRetriesExceededError).
        ``headers=`` is added to the current message's headers (a name given
        replaces its value there), so a unique task keeps its key.
        """
        request = self.request
        if request.called_directly:
            raise RuntimeError(f"{self.name}.retry() is only allowed inside a running task")
        limit = self.max_retries if max_retries is UNSET else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"{self.name} ({request.id}) can't be retried: max_retries={limit} reached"
            )
        if countdown is None and eta is None:
            countdown = self.default_retry_delay
        when = (
            countdown
            if countdown is not None
            else (_to_epoch(eta, "eta", self.name) or 0) - time.time()
        )
        envelope = self.build_envelope(
            request.args if args is None else args,
            request.kwargs if kwargs is None else kwargs,
            task_id=request.id,
            countdown=countdown,
            eta=eta if countdown is None else None,
            queue=options.pop("queue", request.queue),
            priority=options.pop("priority", request.priority),
            # Added to the request's, not instead: the headers the framework put there (a
            # unique task's key, a Django task's, a periodic run's) must travel with it.
            headers={**(request.headers or {}), **(options.pop("headers", None) or {})},
            ignore_result=request.ignore_result,
            parent_id=request.parent_id,
            root_id=request.root_id,
            group_id=request.group_id,
            group_index=request.group_index,
            chord=request.chord,
            retries=request.retries + 1,
            time_limit=options.pop("time_limit", request.time_limit),
            soft_time_limit=options.pop("soft_time_limit", request.soft_time_limit),
            **options,
        )
        envelope.expires = request.expires
        envelope.link = request.link
        envelope.link_error = request.link_error
        signal = Retry(exc=exc, when=when)
        signal.envelope = envelope  # type: ignore[attr-defined]
        if throw:
            raise signal
        return signal

    def replace(self, sig: Any) -> NoReturn:
        """End this run and let ``sig`` (one task's signature) go on under this task id.

        As in Celery: the replacement keeps the id, so ``AsyncResult.get()``
        of this task returns the replacement's value, and it inherits this
        task's place in its workflow (the next chain step and callbacks,
        its group and chord). Nothing after the call runs: write
        ``return self.replace(...)``. The current run is recorded as RETRY
        until the replacement stores its own state.
        """
        from django_taskq.broker.publish import REPLACED
        from django_taskq.exceptions import Replace
        from django_taskq.signatures import Signature, task_for

        request = self.request
        if request.called_directly:
            raise RuntimeError(f"{self.name}.replace() is only allowed inside a running task")
        if type(sig) is not Signature:
            raise TypeError(
                f"{self.name}.replace() takes one task's signature (other_task.s(...)), not "
                f"{type(sig).__name__}; to replace a task with a chain or group, send that "
                "workflow from the task and return its id"
            )
        options = {
            k: v
            for k, v in sig.options.items()
            if k in {"queue", "priority", "countdown", "eta", "expires", "time_limit",
                     "soft_time_limit"}
        }  # fmt: skip
        headers = dict(request.headers or {})
        headers[REPLACED] = int(headers.get(REPLACED) or 0) + 1
        envelope = task_for(sig.task).build_envelope(
            list(sig.args),
            dict(sig.kwargs),
            task_id=request.id,
            headers=headers,
            ignore_result=request.ignore_result,
            parent_id=request.parent_id,
            root_id=request.root_id,
            group_id=request.group_id,
            group_index=request.group_index,
            chord=request.chord,
            **options,
        )
        extra_links = [dict(s) for s in sig.options.get("link", [])]
        envelope.link = [*request.link, *extra_links]
        envelope.link_error = [
            *request.link_error,
            *(dict(s) for s in sig.options.get("link_error", [])),
        ]
        signal = Replace(sig.task)
        signal.envelope = envelope  # type: ignore[attr-defined]
        raise signal

    def backoff_countdown(self, retries: int) -> float:
        """Countdown for autoretry: exponential with retry_backoff, capped and jittered."""
        if not self.retry_backoff:
            return self.default_retry_delay
        factor = 1 if self.retry_backoff is True else int(self.retry_backoff)
        countdown: float = min(float(self.retry_backoff_max), float(factor * (2**retries)))
        if self.retry_jitter:
            countdown = random.uniform(0, countdown)
        return countdown

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Record a custom state (progress) for this task's result.

        Inside a running task, a ``progress`` event goes to its queue's
        events stream too (TASKQ_EVENTS), for the task's history.
        """
        from django_taskq.result import store_state

        if task_id is None and self.request.is_eager:
            return  # eager runs keep no results in Redis (tests may have none)
        task_id = task_id or self.request.id
        if task_id is None:
            raise RuntimeError(f"{self.name}.update_state() needs a task_id outside a running task")
        state = state or states.STARTED
        store_state(task_id, state, meta, task_name=self.name)
        request = self.request
        if task_id == request.id and request.queue and not request.called_directly:
            from django_taskq import events

            if events.enabled():
                events.write_progress(
                    request.queue, task_id, self.name, state, meta, request.hostname
                )

    # -- canvas -------------------------------------------------------------
    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of this task with partial arguments."""
        from django_taskq.canvas import Signature

        return Signature(self.name, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: a parent's result is not prepended."""
        from django_taskq.canvas import Signature

        return Signature(self.name, args, kwargs, immutable=True)

    def signature(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        from django_taskq.canvas import Signature

        return Signature(self.name, args or (), kwargs or {}, options=options)

    subtask = signature

    def map(self, it: Iterable[Any]) -> canvas.xmap:
        """One task that calls this task once per item: ``~add_one.map([1, 2])``."""
        from django_taskq.canvas import xmap

        return xmap(self.s(), it)

    def starmap(self, it: Iterable[Any]) -> canvas.xstarmap:
        """One task that calls this task with each item as arguments: ``add.starmap(zip(a, b))``."""
        from django_taskq.canvas import xstarmap

        return xstarmap(self.s(), it)

    def chunks(self, it: Iterable[Any], n: int) -> canvas.chunks:
        """A group of starmap tasks over ``it``, ``n`` items each."""
        from django_taskq.canvas import chunks

        return chunks(self.s(), it, n)


def _sig_dicts(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict) or hasattr(value, "to_dict"):
        value = [value]
    if not isinstance(value, list | tuple):
        raise TypeError(f"a {type(value).__name__}")
    out = []
    for item in value:
        # A Signature is a dict whose nested signatures must become plain
        # dicts too, so the envelope holds only plain JSON values.
        to_dict = getattr(item, "to_dict", None)
        if to_dict is None and not isinstance(item, dict):
            raise TypeError(f"a list holding a {type(item).__name__}")
        out.append(to_dict() if to_dict is not None else dict(item))
    return out


@overload
def shared_task(func: Callable[..., Any]) -> Task: ...
@overload
def shared_task(**options: Any) -> Callable[[Callable[..., Any]], Task]: ...
def shared_task(func: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Turn a function into a task: ``@shared_task`` or ``@shared_task(**options)``."""

    base = options.pop("base", Task)
    if not (isinstance(base, type) and issubclass(base, Task)):
        raise TypeError(
            f"@shared_task(base={base!r}): base must be a subclass of django_taskq.Task "
            "(from django_taskq import Task)"
        )

    def decorate(fn: Callable[..., Any]) -> Task:
        return registry.register(base(fn, **options))

    if func is not None:
        if options:
            raise TypeError("use @shared_task or @shared_task(**options), not both")
        return decorate(func)
    return decorate
