"""Send a failed, revoked or dead-lettered task again, as a new task (the admin's retry).

The recorder keeps each task's message as sent (``TaskRecord.body``: JSON
as it is, a msgpack or compressed body as ``bodies.to_text()`` writes it).
A retry reads it with ``bodies.read`` (the envelope's own checks; never
pickle: the admin must not unpickle what a database row holds), and
publishes a copy through ``broker.publish``, the one way a message enters
Redis, in the form the original was sent in (its serializer and
compression), so the task gets its arguments as the original run did
(a tuple stays a tuple with msgpack), with:

- a new id, so the new run has a history row of its own; the header
  ``retry_of`` names the old id (the recorder copies it into
  ``TaskRecord.retry_of``, which links the two rows);
- the same task, arguments, queue, priority, headers, time limits and
  result options; ``retries`` back at 0 (the task's retry budget is new);
- no ETA (it runs now), and an expiry as far after now as the original's
  was after its send, so a task that had to start within a minute still
  must;
- the original's parent and root ids (the detail page shows it among its
  workflow), but *not* its follow-ups (link, link_error) nor its group or
  chord membership: the original's failure already settled those (its
  chord counted it, the later steps of its chain were failed), and the
  frozen ids of those steps have final results that a re-run would not
  change. A retry re-runs the one task.

Each retry is published with a once key named after the old id, so a
double-submitted form within the publish window queues one retry.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from django_taskq import bodies, codecs, states
from django_taskq.broker.publish import publish
from django_taskq.exceptions import BrokerUnavailable, DecodeError
from django_taskq.history.models import TaskRecord
from django_taskq.messages import Envelope, new_id

RETRY_OF_HEADER = "retry_of"
RETRYABLE_STATES = frozenset({states.FAILURE, states.REVOKED})


class Refusal(Exception):
    """A row that cannot be sent again; the message says why, for the admin's user."""


@dataclass(frozen=True)
class Resent:
    old_id: str
    new_id: str


@dataclass(frozen=True)
class Refused:
    task_id: str
    reason: str


def retry_envelope(record: TaskRecord, now: float | None = None) -> Envelope:
    """The new task's message for ``record``; Refusal when it cannot be retried."""
    if record.state not in RETRYABLE_STATES and not record.dead_lettered:
        raise Refusal(
            _("it is %(state)s; only failed, revoked or dead-lettered tasks can be retried")
            % {"state": record.state}
        )
    old = kept_envelope(record)
    now = time.time() if now is None else now
    expires = None
    if old.expires is not None:
        window = old.expires - max(old.sent_at, old.eta or 0.0)
        expires = now + window if window > 0 else None
    headers: dict[str, Any] = {**old.headers, RETRY_OF_HEADER: old.id}
    task_id = new_id()
    return dataclasses.replace(
        old,
        id=task_id,
        retries=0,
        eta=None,
        expires=expires,
        headers=headers,
        # A task that was its own root is the root of the new one; else it keeps its workflow's.
        root_id=task_id if old.root_id == old.id else old.root_id,
        group_id=None,
        group_index=None,
        link=[],
        link_error=[],
        chord=None,
        sent_at=now,
    )


def kept_envelope(record: TaskRecord) -> Envelope:
    """The envelope of ``record``'s kept message; Refusal saying why it cannot be read."""
    if not record.body:
        raise Refusal(
            _(
                "its message was not kept (larger than TASKQ_HISTORY_BODY_LIMIT, or pickled), "
                "so it cannot be sent again from here"
            )
        )
    try:
        body = bodies.from_text(record.body)
    except DecodeError as exc:
        raise Refusal(_("its kept message cannot be read: %(error)s") % {"error": exc}) from exc
    found = bodies.read(body)
    if found.data is None or found.problem:
        raise Refusal(_("its kept message cannot be read: %(error)s") % {"error": found.problem})
    # Decoded again into an Envelope (read() gave a dict): a tuple stays a tuple.
    return Envelope.decode(body, accept=codecs.SAFE)


def sent_form(record: TaskRecord) -> tuple[str, str]:
    """The serializer and compression ``record``'s message was sent with ("none": plain).

    Only for a record whose kept message ``kept_envelope()`` read.
    """
    content = bodies.content_of(bodies.from_text(record.body))
    serializer, _plus, compression = content.partition("+")
    return serializer, compression or codecs.NO_COMPRESSION


@dataclass
class Report:
    """What a retry of some rows did."""

    sent: list[Resent] = dataclasses.field(default_factory=list)
    refused: list[Refused] = dataclasses.field(default_factory=list)
    #: Redis could not be reached: these ids were not sent (the first one perhaps was).
    unsent: list[str] = dataclasses.field(default_factory=list)
    error: BrokerUnavailable | None = None


def resend(records: list[TaskRecord]) -> Report:
    """Send each record again; report what was sent, refused (with why) and left unsent.

    Stops at the first BrokerUnavailable: the rest would only wait for the
    same timeout each. ``maybe_sent`` on the error says whether the task
    being sent then may have been queued all the same.
    """
    report = Report()
    for index, record in enumerate(records):
        try:
            envelope = retry_envelope(record)
            serializer, compression = sent_form(record)
        except Refusal as exc:
            report.refused.append(Refused(record.task_id, str(exc)))
            continue
        try:
            queued = publish(
                envelope,
                once=f"retry:{record.task_id}",
                serializer=serializer,
                compression=compression,
            )
        except BrokerUnavailable as exc:
            report.error = exc
            report.unsent = [r.task_id for r in records[index:]]
            break
        if queued:
            report.sent.append(Resent(record.task_id, envelope.id))
        else:
            report.refused.append(
                Refused(record.task_id, _("it was sent again moments ago (a repeated request)"))
            )
    return report
