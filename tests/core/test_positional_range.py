"""arguments.positional_range: the fast check of a positional-only call agrees with bind()."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from django_taskq import shared_task
from django_taskq.arguments import positional_range


def _a(x: Any, y: Any) -> None: ...
def _b(x: Any, y: Any = 1, *rest: Any) -> None: ...
def _c(x: Any, /, y: Any = 2, *, z: Any = 3) -> None: ...
def _d(x: Any, *, z: Any) -> None: ...
def _e(*args: Any, **kwargs: Any) -> None: ...
def _f() -> None: ...
def _g(x: Any = 1, **kwargs: Any) -> None: ...


@pytest.mark.parametrize("func", [_a, _b, _c, _d, _e, _f, _g])
def test_the_range_says_what_bind_says_for_every_count(func: Any) -> None:
    sig = inspect.signature(func)
    bounds = positional_range(sig)
    for count in range(6):
        try:
            sig.bind(*range(count))
            binds = True
        except TypeError:
            binds = False
        fast = bounds is not None and bounds[0] <= count <= bounds[1]
        assert fast == binds, (func.__name__, count)


def test_a_call_outside_the_range_still_gets_the_full_message() -> None:
    @shared_task(name="tests.core.positional_range.two")
    def two(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match="missing a required argument: 'y'"):
        two.delay(1)
    with pytest.raises(TypeError, match="too many positional arguments"):
        two.delay(1, 2, 3)
