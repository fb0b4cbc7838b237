"""The error a control call raises for input it cannot act on."""

from __future__ import annotations

from django_taskq.exceptions import TaskqError


class BadRequest(TaskqError, ValueError):
    """A control call was given something it cannot act on: the message names it and what to do.

    A ValueError too, so code that validates input with ``except ValueError``
    catches it; the management commands print it as a CommandError.
    """
