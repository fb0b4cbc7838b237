"""argparse types for the commands' numeric options: a bad value is a usage error naming it.

``type=int`` takes ``-c 0`` and ``-c -3``, and ``type=float`` takes
``--timeout nan`` and ``--wait -1``: the worker then started with no
consumer, or a wait never ended. These types refuse such values where
argparse reports them, with the option's name and what it must be.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` (to ``high``)."""
    want = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {want}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {want}")
        return value

    parse.__name__ = "whole number"
    return parse


def seconds(low: float = 0.0, *, strict: bool = True) -> Callable[[str], float]:
    """A finite number of seconds above ``low`` (or at least it, without ``strict``)."""
    want = f"a number of seconds {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {want}") from None
        if not math.isfinite(value) or (value <= low if strict else value < low):
            raise argparse.ArgumentTypeError(f"{text!r} is not {want}")
        return value

    parse.__name__ = "seconds"
    return parse


#: The types the commands use.
positive = whole(1)
non_negative = whole(0)
priority = whole(0, 9)
some_seconds = seconds(0.0)
