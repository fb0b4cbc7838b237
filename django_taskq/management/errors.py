"""What the operations commands do when Redis fails: one line on stderr, exit status 1."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.core.management.base import CommandError

from django_taskq.exceptions import BrokerError

P = ParamSpec("P")
R = TypeVar("R")


def reports_broker_errors(handle: Callable[P, R]) -> Callable[P, R]:
    """Turn a BrokerError raised by a command's ``handle()`` into a CommandError.

    Django prints a CommandError as ``CommandError: <message>`` on stderr and
    exits with status 1, instead of a traceback (``--traceback`` shows it).
    """

    @functools.wraps(handle)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handle(*args, **kwargs)
        except BrokerError as exc:
            raise CommandError(str(exc)) from exc

    return wrapper
