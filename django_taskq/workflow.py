"""What happens after a task finishes: link callbacks and chord counting.

The worker calls ``after_finish`` before it acknowledges a message that
carries ``link``, ``link_error`` or ``chord``, so a crash in between re-runs
the task and its follow-ups instead of losing them (at-least-once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_taskq.messages import Envelope
    from django_taskq.trace import Outcome


def needs_after_finish(envelope: Envelope) -> bool:
    """True when the message has follow-ups (the worker skips the call otherwise)."""
    return bool(envelope.link or envelope.link_error or envelope.chord)


def after_finish(envelope: Envelope, outcome: Outcome, *, eager: bool = False) -> None:
    """Publish link/link_error callbacks and count chord completion."""
    if not needs_after_finish(envelope):
        return
    raise NotImplementedError("workflows are not implemented yet")
