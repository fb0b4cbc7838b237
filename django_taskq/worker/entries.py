"""Check a fetched stream entry before anything runs: its fields, then its body.

Whatever bytes are in Redis, a worker must neither crash on an entry nor
loop on it. ``read()`` turns a ``Delivery`` into a ``Message`` (a checked
entry with its decoded envelope) or raises ``BadEntry`` whose reason names
the field that is wrong; the consumer dead-letters such an entry with that
reason and goes on.

An entry written by django_taskq has exactly these fields:

- ``i``: the task id (UTF-8, the same as the body's ``id``);
- ``b``: the body, the JSON envelope (``messages.Envelope``);
- ``dc``: earlier deliveries that did not finish (a non-negative integer);
- ``v`` (optional): a verdict the worker parent left when it killed the run
  (``time_limit:<seconds>`` or ``terminated:<signal>``), so the next
  consumer settles it that way instead of running it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django_taskq.envelope_checks import MAX_ID_BYTES
from django_taskq.exceptions import DecodeError
from django_taskq.messages import Envelope
from django_taskq.worker.streams import Delivery

KNOWN_FIELDS = frozenset({b"i", b"b", b"dc", b"v"})
_COUNT = re.compile(rb"^[0-9]{1,9}$")
_VERDICT = re.compile(r"^(time_limit:[0-9.]+|terminated:[A-Z0-9]+)$")


class BadEntry(Exception):
    """An entry a worker cannot use; ``reason`` names the field."""

    def __init__(self, reason: str, task_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: The task id, when it could be read (so its result can say why).
        self.task_id = task_id


@dataclass
class Message:
    """A checked entry: the delivery, its envelope, how often it was delivered."""

    delivery: Delivery
    envelope: Envelope
    delivery_count: int  # earlier unfinished deliveries + 1 for this one
    verdict: str | None

    @property
    def id(self) -> str:
        return self.envelope.id


def _shown(value: bytes) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def task_id_of(delivery: Delivery) -> str | None:
    """The entry's task id if it is a usable one (UTF-8, non-empty, no newline)."""
    raw = delivery.fields.get(b"i")
    if not raw or len(raw) > MAX_ID_BYTES or b"\n" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def delivery_count(delivery: Delivery) -> int | None:
    """``dc`` + 1, or None when ``dc`` is not a non-negative integer."""
    raw = delivery.fields.get(b"dc")
    if raw is None or not _COUNT.match(raw):
        return None
    return int(raw) + 1


def read(delivery: Delivery, accept: list[str]) -> Message:
    """The checked message of ``delivery``; BadEntry names what is wrong."""
    fields = delivery.fields
    where = f"entry {delivery.entry_id} of {delivery.stream}"
    unknown = [name for name in fields if name not in KNOWN_FIELDS]
    task_id = task_id_of(delivery)
    if unknown:
        names = ", ".join(_shown(n) for n in sorted(unknown)[:5])
        raise BadEntry(f"{where}: unknown field(s) {names}", task_id)
    raw_id = fields.get(b"i")
    if raw_id is None:
        raise BadEntry(f"{where}: field 'i' (the task id) is missing")
    if task_id is None:
        raise BadEntry(
            f"{where}: field 'i' is not a task id (UTF-8, 1-255 bytes): {_shown(raw_id)}"
        )
    count = delivery_count(delivery)
    if count is None:
        raw = fields.get(b"dc")
        problem = "is missing" if raw is None else f"is not a non-negative integer: {_shown(raw)}"
        raise BadEntry(f"{where}: field 'dc' (the delivery count) {problem}", task_id)
    verdict = None
    if b"v" in fields:
        try:
            verdict = fields[b"v"].decode("ascii")
        except UnicodeDecodeError:
            verdict = ""
        if not _VERDICT.match(verdict):
            raise BadEntry(
                f"{where}: field 'v' (a verdict) is not one: {_shown(fields[b'v'])}", task_id
            )
    body = fields.get(b"b")
    if body is None:
        raise BadEntry(f"{where}: field 'b' (the body) is missing", task_id)
    try:
        envelope = Envelope.decode(body, accept)
    except DecodeError as exc:
        raise BadEntry(f"{where}: field 'b': {exc}", task_id) from None
    except Exception as exc:  # a codec that raised something else: still a bad body
        raise BadEntry(f"{where}: field 'b' cannot be decoded: {exc!r}", task_id) from None
    if envelope.id != task_id:
        raise BadEntry(
            f"{where}: field 'i' ({task_id}) does not match the body's id ({envelope.id})", task_id
        )
    return Message(delivery, envelope, count, verdict)
