"""Signature: a task call that is not made yet (name, partial arguments, options).

Like Celery's, a Signature is a ``dict``, so it is its own JSON form: it can
be stored, passed as a task argument or carried in a message, and
``signature(d)`` rebuilds the right class from it (group, chain, chord, ...
live in ``django_taskq.canvas``). Freezing gives a signature its task id
before it is sent, which is what lets a workflow hand out its final result,
and lets a worker re-publish follow-ups after a crash without duplicates.
"""

from __future__ import annotations

import copy
import itertools
import types
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from django_taskq.conf import taskq_settings
from django_taskq.exceptions import NotRegistered
from django_taskq.registry import registry

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.result import AsyncResult
    from django_taskq.result_group import GroupResult
    from django_taskq.task import Task

    Result: TypeAlias = AsyncResult | GroupResult

#: Makes a task id; random for a new workflow, derived for a follow-up (see derived_ids).
IdSource = Callable[[], str]

#: Options a signature may carry: apply_async's, plus those freezing sets.
OPTIONS = frozenset(
    {
        "countdown",
        "eta",
        "expires",
        "queue",
        "priority",
        "task_id",
        "headers",
        "link",
        "link_error",
        "ignore_result",
        "time_limit",
        "soft_time_limit",
        "serializer",
        "compression",
        "group_id",
        "group_index",
        "chord",
    }
)
#: Options that place a task inside a workflow; a group's or chain's own
#: options never push these down to its members.
STRUCTURAL = frozenset({"task_id", "group_id", "group_index", "chord", "link", "link_error"})
#: Options that only mean something for a message sent (not for an eager run).
_NOT_EAGER = frozenset({"serializer", "compression", "chord"})
#: Options that delay a call: a chain gives them to its first step only.
TIMING = frozenset({"countdown", "eta"})

_NAMESPACE = uuid.UUID("6f1c1c5e-4b8a-4d7e-9a55-3c1d2b7e9f10")
_LAZY = (range, zip, map, filter, types.GeneratorType, itertools.islice, itertools.chain)


def random_ids() -> IdSource:
    """Fresh uuid4 ids, for a workflow the caller starts."""
    return lambda: str(uuid.uuid4())


def derived_ids(seed: str) -> IdSource:
    """Ids derived from ``seed``: the same seed gives the same ids, in order.

    A worker freezes a follow-up it did not get frozen (a plain ``link``
    callback) with ids derived from the finished task's id, so a re-run after
    a crash makes the same ids and its publish is dropped as a duplicate.
    """
    counter = itertools.count()
    return lambda: str(uuid.uuid5(_NAMESPACE, f"{seed}/{next(counter)}"))


def materialise(value: Any) -> Any:
    """A list from a range, zip, map, filter or generator (recursively); else ``value``."""
    if isinstance(value, _LAZY):
        return [materialise(item) for item in value]
    return value


def _items(value: Iterable[Any]) -> list[Any]:
    """Items of a map/starmap/chunks argument: tuples and lazy iterables become lists."""
    return [
        list(materialise(item)) if isinstance(item, tuple) else materialise(item) for item in value
    ]


def _check_options(name: str, options: dict[str, Any]) -> None:
    unknown = set(options) - OPTIONS
    if unknown:
        if {"unique_key", "unique_for"} & unknown:
            from django_taskq.unique import refuse_elsewhere

            raise refuse_elsewhere(name, "a signature or a workflow")
        raise TypeError(
            f"signature of {name}: unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(OPTIONS))}"
        )


class Signature(dict[str, Any]):
    """A task call that is not made yet: name, partial args and kwargs, options.

    ``add.s(2)`` is a partial: ``add.s(2).delay(4)`` runs ``add(4, 2)`` (new
    arguments are prepended, new kwargs override). An immutable signature
    (``add.si(2, 2)``) ignores arguments given later, so a chain does not
    pass it the previous result.
    """

    subtask_type_name: ClassVar[str | None] = None
    _types: ClassVar[dict[str, type[Signature]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.subtask_type_name:
            Signature._types[cls.subtask_type_name] = cls

    def __init__(
        self,
        task: str | Task | dict[str, Any] | None = None,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        subtask_type: str | None = None,
        immutable: bool = False,
        **ex: Any,
    ) -> None:
        if isinstance(task, dict):
            data = task
            task = data["task"]
            args = data.get("args")
            kwargs = data.get("kwargs")
            options = {**(data.get("options") or {}), **(options or {})}
            subtask_type = data.get("subtask_type")
            immutable = bool(data.get("immutable", immutable))
        if task is None:
            raise TypeError("a signature needs a task name")
        name = task if isinstance(task, str) else str(getattr(task, "name", task))
        opts = {**(options or {}), **ex}
        _check_options(name, opts)
        super().__init__(
            task=name,
            args=tuple(materialise(a) for a in (args or ())),
            kwargs=dict(kwargs or {}),
            options=opts,
            subtask_type=subtask_type or self.subtask_type_name,
            immutable=bool(immutable),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        """Rebuild a signature of this class from its dict form."""
        return cls(data)

    # -- fields -------------------------------------------------------------
    @property
    def task(self) -> str:
        return str(self["task"])

    @property
    def name(self) -> str:
        return self.task

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self["args"])

    @property
    def kwargs(self) -> dict[str, Any]:
        value: dict[str, Any] = self["kwargs"]
        return value

    @property
    def options(self) -> dict[str, Any]:
        value: dict[str, Any] = self["options"]
        return value

    @property
    def subtask_type(self) -> str | None:
        return self.get("subtask_type")

    @property
    def immutable(self) -> bool:
        return bool(self.get("immutable"))

    @property
    def id(self) -> str | None:
        """The task id, once frozen (or given with ``set(task_id=...)``)."""
        return self.options.get("task_id")

    @property
    def type(self) -> Task:
        """The registered Task this signature calls."""
        return registry.get(self.task)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{'%' if self.immutable else ''}{self.task}({', '.join(parts)})"

    # -- building -----------------------------------------------------------
    def _merge(
        self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self.immutable:
            return self.args, dict(self.kwargs)
        return tuple(args or ()) + self.args, {**self.kwargs, **(kwargs or {})}

    def _partial(self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None) -> None:
        """Apply partial arguments in place (a compound passes them to its members)."""
        self["args"], self["kwargs"] = self._merge(args, kwargs)

    def clone(
        self,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A deep copy, with partial arguments and options applied to the copy."""
        sig = copy.deepcopy(self)
        if args or kwargs:
            sig._partial(args, kwargs)
        if options:
            sig.set(**options)
        return sig

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Set options (queue, countdown, ...) in place; returns the signature."""
        _check_options(self.task, options)
        if immutable is not None:
            self["immutable"] = bool(immutable)
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self["immutable"] = bool(immutable)

    def link(self, callback: Signature) -> Signature:
        """Call ``callback`` with this task's result when it succeeds; returns it."""
        self.options.setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` when this task fails (see docs/workflows.md); returns it."""
        self.options.setdefault("link_error", []).append(errback)
        return errback

    def on_error(self, errback: Signature) -> Signature:
        """``link_error`` that returns the signature itself, for chaining calls."""
        self.link_error(errback)
        return self

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        from django_taskq.canvas import chain

        if isinstance(other, chain):
            return chain(self, *other.tasks)
        if isinstance(other, Signature):
            return chain(self, other)
        return NotImplemented

    def __deepcopy__(self, memo: dict[int, Any]) -> Signature:
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.items():
            dict.__setitem__(clone, key, copy.deepcopy(value, memo))
        return clone

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: plain dicts and lists all the way down."""
        return _plain(self)  # type: ignore[no-any-return]

    # -- freezing and sending (see the module docstring) -------------------
    def freeze(
        self,
        _id: str | None = None,
        group_id: str | None = None,
        group_index: int | None = None,
    ) -> Result:
        """Give every task in this signature its id (in place); return the result."""
        if _id:
            self.options["task_id"] = _id
        membership: dict[str, Any] | None = None
        if group_id is not None:
            membership = {"group_id": group_id, "group_index": group_index}
        return self._freeze(random_ids(), membership)

    def _freeze(self, ids: IdSource, membership: dict[str, Any] | None) -> Result:
        from django_taskq.result import AsyncResult

        if not self.options.get("task_id"):
            self.options["task_id"] = ids()
        if membership:
            self.options.update(membership)
        return AsyncResult(self.options["task_id"], task_name=self.task)

    def _push_options(self, options: dict[str, Any]) -> None:
        """Options given to the whole workflow (queue, countdown, ...)."""
        self.set(**options)

    def _envelopes(
        self,
        args: Iterable[Any] | None,
        kwargs: dict[str, Any] | None,
        parent_id: str | None,
        root_id: str | None,
        extra_link: list[Signature] | None = None,
    ) -> list[Envelope]:
        """The messages that start this (frozen) signature."""
        call_args, call_kwargs = self._merge(args, kwargs)
        options = dict(self.options)
        options.pop("serializer", None)
        options.pop("compression", None)
        links = [*options.pop("link", []), *(extra_link or [])]
        return [
            task_for(self.task).build_envelope(
                list(call_args),
                call_kwargs,
                link=links,
                parent_id=parent_id,
                root_id=root_id,
                **options,
            )
        ]

    def _apply_frozen(
        self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None, throw: bool | None
    ) -> Result:
        """Run this (frozen) signature inline, as eager mode does."""
        call_args, call_kwargs = self._merge(args, kwargs)
        options = {k: v for k, v in self.options.items() if k not in _NOT_EAGER}
        return self.type.apply(call_args, call_kwargs, throw=throw, **options)

    def apply_async(
        self,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Result:
        """Send the call (or the whole workflow) to the workers; return its result."""
        if taskq_settings.TASK_ALWAYS_EAGER:
            return self.apply(args, kwargs, **options)
        from django_taskq.workflow import send

        return send(self, args, kwargs, options)

    def delay(self, *args: Any, **kwargs: Any) -> Result:
        """``apply_async`` with partial arguments given positionally."""
        return self.apply_async(args, kwargs)

    def apply(
        self,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Result:
        """Run the call (or the whole workflow) here and now, as eager mode does."""
        sig = expanded(self).clone()
        if options:
            sig._push_options(options)
        sig._freeze(random_ids(), None)
        return sig._apply_frozen(args, kwargs, throw=None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task function inline with the partial arguments merged in."""
        call_args, call_kwargs = self._merge(args, kwargs)
        return self.type(*call_args, **call_kwargs)

    def __invert__(self) -> Any:
        """``~sig``: apply it and wait for its result."""
        return self.apply_async().get()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def task_for(name: str) -> Task:
    """The registered task, or a stand-in that can build messages for a name known elsewhere.

    A follow-up may name a task registered only in other workers; its message
    is still built here with routes and defaults applied.
    """
    try:
        return registry.get(name)
    except NotRegistered:
        from django_taskq.task import Task

        def elsewhere(*args: Any, **kwargs: Any) -> Any:
            raise NotRegistered(f"task {name!r} is not registered in this process")

        return Task(elsewhere, name=name, typing=False)


def signature(varies: Any, *args: Any, **kwargs: Any) -> Signature:
    """A Signature from a dict (its JSON form), a task name, or a Signature (copied)."""
    if isinstance(varies, dict) and not isinstance(varies, Signature) and "task" in varies:
        import django_taskq.canvas  # noqa: F401 - registers the workflow classes

        cls = Signature._types.get(varies.get("subtask_type") or "", Signature)
        return cls.from_dict(varies)
    if isinstance(varies, Signature):
        return varies.clone()
    return Signature(varies, *args, **kwargs)


def maybe_signature(value: Any) -> Signature | None:
    """``value`` as a Signature: dicts are rebuilt, Signatures kept, None stays None."""
    if value is None or isinstance(value, Signature):
        return value
    if isinstance(value, dict):
        return signature(value)
    raise TypeError(f"expected a signature or its dict form, not {type(value).__name__}")


def _as_signature(value: Any) -> Signature:
    sig = maybe_signature(value)
    if sig is None:
        raise TypeError("expected a signature, not None")
    return sig


def expanded(sig: Signature) -> Signature:
    """``sig`` with shorthand forms expanded (chunks becomes its group)."""
    from django_taskq.canvas import chunks

    return sig.group() if isinstance(sig, chunks) else sig
