"""Checking a call's arguments against a task's signature, every problem named.

``inspect.Signature.bind`` stops at the first problem it meets: for
``add.delay(1, z=2)`` on ``add(x, y)`` it says only "missing a required
argument: 'y'", and the caller fixes that to meet the next error. A task
call is checked before it is sent (``delay()``, the admin's periodic task
form, a beat schedule), so the message names all of them at once: too many
positional arguments, unexpected keywords, values given twice, and missing
arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
_VARIADIC = (_P.VAR_POSITIONAL, _P.VAR_KEYWORD)


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def problems(sig: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[str]:
    """What is wrong with calling ``sig`` with ``args`` and ``kwargs`` (empty: nothing)."""
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    takes_more = any(p.kind is _P.VAR_POSITIONAL for p in params)
    takes_any = any(p.kind is _P.VAR_KEYWORD for p in params)
    by_name = {p.name: p for p in params}
    found: list[str] = []
    if len(args) > len(positional) and not takes_more:
        found.append(
            f"too many positional arguments ({len(args)} given, it takes {len(positional)})"
        )
    filled = {p.name for p in positional[: len(args)]}
    keywords = {
        k
        for k in kwargs
        if k in by_name and by_name[k].kind not in (_P.POSITIONAL_ONLY, *_VARIADIC)
    }
    unexpected = [k for k in kwargs if k not in keywords and not takes_any]
    if unexpected:
        plural = "s" if len(unexpected) > 1 else ""
        found.append(f"unexpected keyword argument{plural} {_names(unexpected)}")
    twice = [k for k in kwargs if k in keywords and k in filled]
    if twice:
        plural = "s" if len(twice) > 1 else ""
        found.append(f"multiple values for argument{plural} {_names(twice)}")
    missing = [
        p.name
        for p in params
        if p.kind not in _VARIADIC
        and p.default is _P.empty
        and p.name not in filled
        and p.name not in keywords
    ]
    if len(missing) == 1:
        found.append(f"missing a required argument: {missing[0]!r}")
    elif missing:
        found.append(f"missing required arguments: {_names(missing)}")
    return found


def positional_range(sig: inspect.Signature) -> tuple[int, float] | None:
    """How many positional arguments alone make a valid call: ``(fewest, most)``.

    None when no call without keywords can bind (a keyword-only parameter
    without a default). A call with no keywords binds exactly when its count
    of positional arguments is in the range, so ``delay(1, 2)`` is checked
    by a comparison instead of ``Signature.bind`` (about a fifth of what a
    ``delay()`` spends in Python before its round trip).
    """
    fewest, most = 0, 0.0
    for p in sig.parameters.values():
        if p.kind in _POSITIONAL:
            most += 1
            if p.default is _P.empty:
                fewest = int(most)
        elif p.kind is _P.VAR_POSITIONAL:
            most = float("inf")
        elif p.kind is _P.KEYWORD_ONLY and p.default is _P.empty:
            return None
    return fewest, most


def check(
    sig: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any], name: str
) -> str | None:
    """None if the call binds; else ``"<name>(<params>): <every problem>"``."""
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        found = problems(sig, args, kwargs) or [str(exc)]
        bare = sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
        return f"{name}{bare}: {'; '.join(found)}"
    return None


def task_call_error(task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """Why calling the registered task ``task_name`` so would fail, or None.

    None too for a task this process does not know (its workers may): the
    caller decides what an unknown name means.
    """
    from django_taskq.registry import registry

    if task_name not in registry:
        return None
    try:
        registry.get(task_name)._check_signature(list(args), dict(kwargs))
    except TypeError as exc:
        return str(exc)
    return None
