"""Messages that kept killing their worker: settle what waits on them.

``reclaim.lua`` dead-letters a message delivered TASKQ_MAX_DELIVERIES times
and records FAILURE with WorkerLostError. Lua cannot run Python follow-ups,
so it returns the bodies and this module runs each one's workflow step (a
chord counts the failure, a chain fails, errbacks run) as if the task had
failed, instead of leaving them waiting forever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django_taskq import states
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import DecodeError, WorkerLostError
from django_taskq.followups import after_finish, needs_after_finish
from django_taskq.messages import Envelope
from django_taskq.trace import Outcome

logger = logging.getLogger("django_taskq.worker")


def settle(bodies: Iterable[bytes | str]) -> None:
    """Run the failure follow-ups of dead-lettered messages."""
    for body in bodies:
        try:
            envelope = Envelope.decode(body, list(taskq_settings.ACCEPT_CONTENT))
        except DecodeError:
            continue
        if not needs_after_finish(envelope):
            continue
        reason = (
            f"task {envelope.task}[{envelope.id}] killed its worker "
            f"{taskq_settings.MAX_DELIVERIES} times and was dead-lettered"
        )
        try:
            after_finish(envelope, Outcome(states.FAILURE, exception=WorkerLostError(reason)))
        except Exception:
            logger.exception("could not run the follow-ups of dead-lettered %s", envelope.id)
