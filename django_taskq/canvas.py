"""Workflows: group, chain, chord, chunks, xmap and xstarmap.

Each is a Signature (see ``django_taskq.signatures``, re-exported here), so a
whole workflow has a JSON form and can be rebuilt with ``signature(d)``.

Applying a workflow first *freezes* it: every task in it gets its id, so the
caller holds the final result (with ``.parent`` links) before anything runs.
Chain steps then travel as ``link`` callbacks of the step before; chord
header tasks carry the chord (id, size, body) in their own message. What a
worker does when such a task finishes lives in ``django_taskq.followups``;
because all ids are fixed up front, a worker that re-runs a finished task
after a crash publishes the same follow-up ids again, and the broker drops
them as duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django_taskq.conf import taskq_settings
from django_taskq.signatures import (
    OPTIONS,
    STRUCTURAL,
    TIMING,
    IdSource,
    Signature,
    _as_signature,
    _items,
    derived_ids,
    expanded,
    materialise,
    maybe_signature,
    random_ids,
    signature,
)

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.signatures import Result

__all__ = [
    "OPTIONS",
    "Signature",
    "chain",
    "chord",
    "chunks",
    "derived_ids",
    "expanded",
    "group",
    "materialise",
    "maybe_signature",
    "random_ids",
    "signature",
    "single_final",
    "xmap",
    "xstarmap",
]


def _unshared(tasks: Iterable[Any]) -> list[Signature]:
    """Members as signatures; one object listed twice is copied, so each gets its own id."""
    seen: set[int] = set()
    out = []
    for item in tasks:
        sig = expanded(_as_signature(item))
        if id(sig) in seen:
            sig = sig.clone()
        seen.add(id(sig))
        out.append(sig)
    return out


def _known_parent(result: Result) -> Result | None:
    from django_taskq.result_group import GroupResult

    if isinstance(result, GroupResult):
        return result.parent
    known: Result | None = result.__dict__.get("_parent")
    return known


def attach_parent(result: Result, parent: Result | None) -> None:
    """Make ``parent`` the parent of the first result in ``result``'s own parent chain.

    A chain's or chord's result already has parents inside the workflow;
    what came before the workflow goes before the first of them. Only
    parents known in memory are followed (no Redis reads while freezing).
    """
    if parent is None:
        return
    while (known := _known_parent(result)) is not None:
        result = known
    result.parent = parent


def _compound_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in STRUCTURAL}


class group(Signature):
    """Run tasks in parallel; the result is a GroupResult, in the order given.

    Accepts signatures as arguments or one iterable (a generator is fine).
    Groups inside a group are flattened, as Celery does.
    """

    subtask_type_name = "group"

    def __init__(self, *tasks: Any, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict):
            tasks = tuple(tasks[0])
        super().__init__("django_taskq.group", (), {"tasks": _unshared(tasks)}, options)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        sig = cls(data["kwargs"]["tasks"], **(data.get("options") or {}))
        sig["immutable"] = bool(data.get("immutable"))
        return sig

    @property
    def tasks(self) -> list[Signature]:
        value: list[Signature] = self["kwargs"]["tasks"]
        return value

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"

    def skew(self, start: float = 1.0, stop: float | None = None, step: float = 1.0) -> group:
        """Spread the members' starts: countdown ``start``, ``start + step``, ... (Celery's).

        With ``stop``, countdowns stay below it: once the next one would
        reach it, the last one is repeated. Returns the group.
        """
        countdown = float(start)
        for index, member in enumerate(self.tasks):
            if index:
                following = countdown + step
                if stop is None or following < stop:
                    countdown = following
            member.set(countdown=countdown)
        return self

    def __call__(self, *args: Any, **options: Any) -> Any:
        """Apply the group (like Celery, calling a group sends it)."""
        return self.apply_async(args, **options)

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, Signature):
            return chord(self, body=other)
        return NotImplemented

    def _partial(self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None) -> None:
        args = tuple(args or ())
        for task in self.tasks:
            task._partial(args, kwargs)

    def link(self, callback: Signature) -> Signature:
        """Celery's semantics: linked to the first task only, and made immutable.

        To run a task after *all* members, use a chord (``group | task``).
        """
        sig = callback.clone().set(immutable=True)
        return self.tasks[0].link(sig)

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` for each member that fails."""
        for task in self.tasks:
            task.link_error(errback.clone())
        return errback

    def _push_options(self, options: dict[str, Any]) -> None:
        for task in self.tasks:
            task._push_options(options)

    def _normalize(self) -> None:
        flat: list[Signature] = []
        for task in _unshared(self.tasks):
            if isinstance(task, group):
                task._normalize()
                flat.extend(task.tasks)
            else:
                flat.append(task)
        self["kwargs"]["tasks"] = flat

    def _freeze(self, ids: IdSource, membership: dict[str, Any] | None) -> Result:
        from django_taskq.result_group import GroupResult

        self._push_options(_compound_options(self.options))
        self._normalize()
        if not self.options.get("task_id"):
            self.options["task_id"] = ids()
        group_id = self.options["task_id"]
        results = [
            task._freeze(ids, {"group_id": group_id, "group_index": index})
            for index, task in enumerate(self.tasks)
        ]
        return GroupResult(group_id, results)

    def _envelopes(
        self,
        args: Iterable[Any] | None,
        kwargs: dict[str, Any] | None,
        parent_id: str | None,
        root_id: str | None,
        extra_link: list[Signature] | None = None,
    ) -> list[Envelope]:
        return [
            envelope
            for task in self.tasks
            for envelope in task._envelopes(args, kwargs, parent_id, root_id)
        ]

    def _apply_frozen(
        self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None, throw: bool | None
    ) -> Result:
        from django_taskq.result_group import GroupResult

        results = [task._apply_frozen(args, kwargs, throw) for task in self.tasks]
        return GroupResult(self.options["task_id"], results)


class chain(Signature):
    """Run tasks one after another, each result prepended to the next task's args.

    ``a | b | c`` builds one too. A group followed by another step becomes a
    chord (the step gets the list of the group's results); a failure stops
    the chain and its result fails with the original exception.
    """

    subtask_type_name = "chain"

    def __init__(self, *tasks: Any, **options: Any) -> None:
        if len(tasks) == 1 and not isinstance(tasks[0], dict):
            tasks = tuple(tasks[0])
        super().__init__("django_taskq.chain", (), {"tasks": _unshared(tasks)}, options)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(data["kwargs"]["tasks"], **(data.get("options") or {}))

    @property
    def tasks(self) -> list[Signature]:
        value: list[Signature] = self["kwargs"]["tasks"]
        return value

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Apply the chain (like Celery, calling a chain sends it)."""
        return self.apply_async(args, kwargs)

    def __or__(self, other: Any) -> Signature:  # type: ignore[override]
        if isinstance(other, chain):
            return chain(*self.tasks, *other.tasks, **self.options)
        if isinstance(other, Signature):
            return chain(*self.tasks, other, **self.options)
        return NotImplemented

    def _partial(self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None) -> None:
        if self.tasks:
            self.tasks[0]._partial(args, kwargs)

    def link(self, callback: Signature) -> Signature:
        """Call ``callback`` with the result of the last step."""
        return self.tasks[-1].link(callback)

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` when any step fails (only the failing step calls it)."""
        for task in self.tasks:
            task.link_error(errback.clone())
        return errback

    def _push_options(self, options: dict[str, Any]) -> None:
        for index, task in enumerate(self.tasks):
            task._push_options(
                options if index == 0 else {k: v for k, v in options.items() if k not in TIMING}
            )

    def _normalize(self) -> None:
        """Flatten nested chains; a group or chord followed by more steps becomes a chord."""
        flat: list[Signature] = []
        for task in _unshared(self.tasks):
            if isinstance(task, chain):
                task._normalize()
                flat.extend(task.tasks)
            else:
                flat.append(task)
        steps: list[Signature] = []
        for index, step in enumerate(flat):
            rest = flat[index + 1 :]
            if rest and isinstance(step, group | chord):
                body = rest[0] if len(rest) == 1 else chain(*rest)
                if isinstance(step, chord):
                    inner = chain(step.body, body) if step.body is not None else body
                    steps.append(chord(step.header, inner, **step.options))
                else:
                    steps.append(chord(step, body))
                break
            steps.append(step)
        if not steps:
            raise ValueError("a chain needs at least one task")
        self["kwargs"]["tasks"] = steps

    def _freeze(self, ids: IdSource, membership: dict[str, Any] | None) -> Result:
        self._push_options(_compound_options(self.options))
        self._normalize()
        previous: Result | None = None
        last = len(self.tasks) - 1
        for index, step in enumerate(self.tasks):
            result = step._freeze(ids, membership if index == last else None)
            attach_parent(result, previous)
            previous = result
        assert previous is not None
        return previous

    def _envelopes(
        self,
        args: Iterable[Any] | None,
        kwargs: dict[str, Any] | None,
        parent_id: str | None,
        root_id: str | None,
        extra_link: list[Signature] | None = None,
    ) -> list[Envelope]:
        first, rest = self.tasks[0], self.tasks[1:]
        if not rest:
            return first._envelopes(args, kwargs, parent_id, root_id)
        follow: Signature = rest[0] if len(rest) == 1 else chain(*rest)
        return first._envelopes(args, kwargs, parent_id, root_id, extra_link=[follow])

    def _apply_frozen(
        self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None, throw: bool | None
    ) -> Result:
        from django_taskq.workflow import eager_failed, outcome_of

        previous: Result | None = None
        for index, step in enumerate(self.tasks):
            if previous is None:
                result = step._apply_frozen(args, kwargs, throw)
            else:
                ok, value, exc = outcome_of(previous)
                if not ok:
                    return eager_failed(chain(*self.tasks[index:]), exc, previous)
                result = step._apply_frozen((value,), None, throw)
            attach_parent(result, previous)
            previous = result
        assert previous is not None
        return previous


class chord(Signature):
    """Run the header tasks in parallel, then the body once with their results.

    The body gets the list of header results in header order, exactly once,
    after every header task has finished. If a header task failed, the body
    does not run: its result fails with ChordError naming that task, and the
    body's link_error callbacks run. An empty header calls the body with [].
    """

    subtask_type_name = "chord"

    def __init__(self, header: Any, body: Any = None, **options: Any) -> None:
        if not isinstance(header, group):
            header = group(header) if not isinstance(header, dict) else signature(header)
            if not isinstance(header, group):
                header = group([header])
        super().__init__(
            "django_taskq.chord", (), {"header": header, "body": maybe_signature(body)}, options
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        kwargs = data["kwargs"]
        return cls(kwargs["header"], kwargs.get("body"), **(data.get("options") or {}))

    @property
    def header(self) -> group:
        value: group = self["kwargs"]["header"]
        return value

    @property
    def body(self) -> Signature | None:
        value: Signature | None = self["kwargs"]["body"]
        return value

    @property
    def tasks(self) -> list[Signature]:
        return self.header.tasks

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def __call__(self, body: Any = None, **options: Any) -> Any:
        """Apply the chord; ``chord(header)(body)`` gives the body here."""
        return self.apply_async(body=body, **options)

    def apply_async(
        self,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        body: Any = None,
        **options: Any,
    ) -> Result:
        """Send the header tasks; the body follows when all of them finished."""
        sig: Signature = self
        if body is not None:
            sig = self.clone()
            sig["kwargs"]["body"] = _as_signature(body)
        return Signature.apply_async(sig, args, kwargs, **options)

    def _partial(self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None) -> None:
        self.header._partial(args, kwargs)

    def link(self, callback: Signature) -> Signature:
        """Call ``callback`` with the body's result."""
        return self._need_body().link(callback)

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` when the chord fails (a header task failed) or the body fails."""
        return self._need_body().link_error(errback)

    def _need_body(self) -> Signature:
        if self.body is None:
            raise TypeError(
                "this chord has no body yet: chord(header, body) or chord(header)(body)"
            )
        return self.body

    def _push_options(self, options: dict[str, Any]) -> None:
        self.header._push_options(options)
        self._need_body()._push_options({k: v for k, v in options.items() if k not in TIMING})

    def _normalize(self) -> None:
        header = self.header
        header._normalize()
        header["kwargs"]["tasks"] = [single_final(t) for t in header.tasks]
        self["kwargs"]["body"] = expanded(self._need_body())

    def _freeze(self, ids: IdSource, membership: dict[str, Any] | None) -> Result:
        from django_taskq.result_group import GroupResult

        self._push_options(_compound_options(self.options))
        self._normalize()
        header, body = self.header, self._need_body()
        if membership and "chord" in membership:
            body = self["kwargs"]["body"] = single_final(body)
        if not header.options.get("task_id"):
            header.options["task_id"] = ids()
        chord_id = header.options["task_id"]
        body_result = body._freeze(ids, membership)
        info = {"id": chord_id, "size": len(header.tasks), "body": body.to_dict()}
        results = [
            task._freeze(ids, {"group_id": chord_id, "group_index": index, "chord": info})
            for index, task in enumerate(header.tasks)
        ]
        attach_parent(body_result, GroupResult(chord_id, results))
        return body_result

    def _envelopes(
        self,
        args: Iterable[Any] | None,
        kwargs: dict[str, Any] | None,
        parent_id: str | None,
        root_id: str | None,
        extra_link: list[Signature] | None = None,
    ) -> list[Envelope]:
        if not self.header.tasks:
            return self._need_body()._envelopes(([],), None, parent_id, root_id)
        return self.header._envelopes(args, kwargs, parent_id, root_id)

    def _apply_frozen(
        self, args: Iterable[Any] | None, kwargs: dict[str, Any] | None, throw: bool | None
    ) -> Result:
        from django_taskq.exceptions import ChordError
        from django_taskq.result_group import GroupResult
        from django_taskq.workflow import eager_chord_failed, outcome_of

        header = self.header
        results = [task._apply_frozen(args, kwargs, throw=False) for task in header.tasks]
        header_result = GroupResult(header.options["task_id"], results)
        values = []
        for member in results:
            ok, value, exc = outcome_of(member)
            if not ok:
                failed_id = getattr(member, "id", None)
                error = ChordError(f"Dependency {failed_id} raised {type(exc).__name__}: {exc}")
                result = eager_chord_failed(self._need_body(), error)
                attach_parent(result, header_result)
                propagate = taskq_settings.TASK_EAGER_PROPAGATES if throw is None else throw
                if propagate:
                    raise error
                return result
            values.append(value)
        result = self._need_body()._apply_frozen((values,), None, throw)
        attach_parent(result, header_result)
        return result


def single_final(sig: Signature) -> Signature:
    """``sig`` with one final task, so it can be counted as one chord member.

    A group (or a chain or chord ending in one) has many final tasks; it is
    wrapped as ``chord(group, django_taskq.collect)``, whose one result is
    the group's list of results.
    """
    sig = expanded(sig)
    if isinstance(sig, group):
        return chord(sig, Signature("django_taskq.collect"))
    if isinstance(sig, chain):
        return chain(*sig.tasks[:-1], single_final(sig.tasks[-1]), **sig.options)
    if isinstance(sig, chord):
        return chord(sig.header, single_final(sig._need_body()), **sig.options)
    return sig


class xmap(Signature):
    """Call ``task`` once per item, in one task message: ``add.map([1, 2])``."""

    subtask_type_name = "xmap"
    builtin = "django_taskq.xmap"

    def __init__(self, task: Any, it: Iterable[Any] = (), **options: Any) -> None:
        if isinstance(task, dict) and task.get("subtask_type") == self.subtask_type_name:
            data = task
            task, it = data["kwargs"]["task"], data["kwargs"]["it"]
            options = {**(data.get("options") or {}), **options}
        super().__init__(
            self.builtin,
            (),
            {"task": _as_signature(task), "it": _items(it)},
            options,
            immutable=True,
        )

    def __repr__(self) -> str:
        return f"[{self.kwargs['task'].task}(x) for x in {self.kwargs['it']!r}]"


class xstarmap(xmap):
    """Call ``task(*item)`` once per item, in one task message: ``add.starmap(zip(a, b))``."""

    subtask_type_name = "xstarmap"
    builtin = "django_taskq.xstarmap"

    def __repr__(self) -> str:
        return f"[{self.kwargs['task'].task}(*x) for x in {self.kwargs['it']!r}]"


class chunks(Signature):
    """Split ``it`` into parts of ``n`` items, one xstarmap task per part (a group)."""

    subtask_type_name = "chunks"

    def __init__(self, task: Any, it: Iterable[Any] = (), n: int = 1, **options: Any) -> None:
        if isinstance(task, dict) and task.get("subtask_type") == self.subtask_type_name:
            data = task
            task, it, n = data["kwargs"]["task"], data["kwargs"]["it"], data["kwargs"]["n"]
            options = {**(data.get("options") or {}), **options}
        if int(n) < 1:
            raise ValueError(f"chunks: n must be at least 1, not {n!r}")
        super().__init__(
            "django_taskq.chunks",
            (),
            {"task": _as_signature(task), "it": _items(it), "n": int(n)},
            options,
            immutable=True,
        )

    def group(self) -> group:
        """The group of xstarmap tasks, one per part."""
        task, items, n = self.kwargs["task"], self.kwargs["it"], self.kwargs["n"]
        parts = [items[i : i + n] for i in range(0, len(items), n)]
        return group([xstarmap(task, part) for part in parts], **self.options)

    def __call__(self, *args: Any, **options: Any) -> Any:
        """Apply the chunks (like Celery, calling them sends them)."""
        return self.apply_async(args, **options)

    def apply_async(
        self,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Result:
        return self.group().apply_async(args, kwargs, **options)

    def freeze(
        self, _id: str | None = None, group_id: str | None = None, group_index: int | None = None
    ) -> Result:
        raise TypeError("freeze the group instead: chunks(...).group().freeze()")
