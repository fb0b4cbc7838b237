"""Task events: what happened to each task, for history and monitoring.

Producers and workers append compact events to their queue's events stream
(``{<prefix>:<queue>}:events``, capped near TASKQ_EVENTS_MAXLEN) in the
writes they already make, so history costs the hot path almost nothing:

- ``sent``: written by enqueue.lua in the step that publishes the message
  (no extra command for the producer);
- ``received``: written by fetch.lua in the call that hands a batch of
  messages to a consumer, as ONE entry for the whole batch (fields ``r``, a
  JSON list of the task ids, ``ts`` and ``w``; ``received_events`` reads it
  as one event per task). A blocking read writes the same entry in the
  pipeline that follows it. No Python per task;
- ``started``: for a task with ``track_started``, or one still running a
  second after it started (the consumer's guard thread adds it);
- ``progress``: from ``Task.update_state()`` inside a running task;
- ``retried``, ``succeeded``, ``failed``, ``revoked``, ``expired``,
  ``dead``: written by the worker's flush, one stream entry holding the
  events of every message the flush settles. Each carries when the message
  was received and started, its runtime and delivery count, so one event
  per task is enough to fill a history row.

An entry's field ``e`` is a JSON list of events (a ``received`` entry has
``r`` instead), and ``w`` the worker that wrote them (absent for a
producer's); each event is a JSON object with
short keys (below), times in epoch milliseconds as integers. The recorder (``django_taskq.history``)
reads the streams as a consumer group and writes ``TaskRecord`` rows.
Nothing here is trusted when read back: ``decode`` drops what is not an
event, and the recorder checks each field.
"""

from __future__ import annotations

import json
import time
import traceback as tb
from collections.abc import Iterable
from typing import Any

from django_taskq.conf import taskq_settings

SENT = "sent"
RECEIVED = "received"
STARTED = "started"
RETRIED = "retried"
SUCCEEDED = "succeeded"
FAILED = "failed"
REVOKED = "revoked"
EXPIRED = "expired"
DEAD = "dead"
PROGRESS = "progress"
KINDS = frozenset(
    {SENT, RECEIVED, STARTED, RETRIED, SUCCEEDED, FAILED, REVOKED, EXPIRED, DEAD, PROGRESS}
)
#: Kinds that end a task.
FINAL = frozenset({SUCCEEDED, FAILED, REVOKED, EXPIRED, DEAD})

#: Short keys of an event, and what they hold.
FIELDS = {
    "k": "kind",
    "id": "task id",
    "n": "task name",
    "ts": "when it happened (epoch milliseconds)",
    "w": "worker (from the entry's own field w, for a worker's batch)",
    "a": "args, repr-limited (sent)",
    "kw": "kwargs, repr-limited (sent)",
    "eta": "due time (sent, retried; epoch seconds)",
    "exp": "expiry (sent; epoch seconds)",
    "pr": "priority (sent)",
    "par": "parent task id",
    "root": "root task id",
    "grp": "group id",
    "per": "periodic task name (sent by beat)",
    "rcv": "received by the worker (epoch milliseconds)",
    "st": "started (epoch milliseconds)",
    "rt": "runtime (microseconds)",
    "dc": "delivery count",
    "rty": "retries so far",
    "res": "result, repr-limited (succeeded)",
    "exc": "exception type (failed, retried)",
    "msg": "exception message or reason",
    "tb": "traceback (failed), limited",
    "rof": "the task this one is a retry of, from the admin (sent; headers retry_of)",
    "body": "the message as encoded for Redis, as text (bodies.to_text: msgpack and compressed "
    "bodies in base64), up to HISTORY_BODY_LIMIT characters; never a pickled one (sent)",
    "state": "the state name given to update_state() (progress)",
    "meta": "the meta given to update_state(), as JSON (progress; dropped when too long)",
}

#: Longest traceback kept in an event.
TRACEBACK_LIMIT = 8000
#: Most events in one stream entry (a larger flush writes several entries).
ENTRY_LIMIT = 128


def enabled() -> bool:
    """True when task events are written (TASKQ_EVENTS)."""
    return bool(taskq_settings.EVENTS)


def maxlen() -> int:
    return int(taskq_settings.EVENTS_MAXLEN)


def short_repr(value: Any, limit: int | None = None) -> str:
    """``repr(value)`` cut to TASKQ_HISTORY_REPR_LIMIT characters."""
    limit = int(taskq_settings.HISTORY_REPR_LIMIT) if limit is None else limit
    try:
        text = repr(value)
    except Exception as exc:  # a __repr__ that raises must not fail the task
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def sent_event(envelope: Any, body: str | bytes | None = None) -> dict[str, Any]:
    """The ``sent`` event of an envelope about to be published.

    ``body`` is the message as encoded for Redis: kept as text
    (``bodies.to_text``: JSON as it is, msgpack and compressed bodies in
    base64) when that is no longer than TASKQ_HISTORY_BODY_LIMIT, so the
    admin can show it and send it again. A pickled body is never kept: the
    admin must not unpickle what a database row holds.
    """
    event: dict[str, Any] = {
        "k": SENT,
        "id": envelope.id,
        "n": envelope.task,
        "ts": int(time.time() * 1000),
        "a": short_repr(envelope.args),
        "kw": short_repr(envelope.kwargs),
        "pr": envelope.priority,
    }
    if envelope.eta is not None:
        event["eta"] = envelope.eta
    if envelope.expires is not None:
        event["exp"] = envelope.expires
    if envelope.parent_id:
        event["par"] = envelope.parent_id
    if envelope.root_id and envelope.root_id != envelope.id:
        event["root"] = envelope.root_id
    if envelope.group_id:
        event["grp"] = envelope.group_id
    if envelope.retries:
        event["rty"] = envelope.retries
    headers = envelope.headers
    if headers:
        periodic = headers.get("periodic_task_name")
        if periodic:
            event["per"] = str(periodic)
        retry_of = headers.get("retry_of")
        if retry_of:
            event["rof"] = str(retry_of)
    if body is not None:
        kept = _kept_body(body)
        if kept is not None:
            event["body"] = kept
    return event


def _kept_body(body: str | bytes) -> str | None:
    """What a ``sent`` event keeps of ``body``: its text, unless too long or pickled."""
    limit = int(taskq_settings.HISTORY_BODY_LIMIT)
    if type(body) is str:  # JSON (most messages) or "p:" (pickle): no copy, no header parse
        return body if len(body) <= limit and not body.startswith("p:") else None
    # Bytes (msgpack, compressed): base64 grows them by a third; skip what cannot fit.
    if len(body) * 4 > limit * 3 + 3:
        return None
    from django_taskq import bodies

    if bodies.content_of(body).startswith("pickle"):
        return None
    text = bodies.to_text(body)
    return text if len(text) <= limit else None


def progress_event(task_id: str, task_name: str, state: str, meta: Any) -> dict[str, Any]:
    """The ``progress`` event of ``update_state(state=..., meta=...)``."""
    event: dict[str, Any] = {
        "k": PROGRESS,
        "id": task_id,
        "n": task_name,
        "ts": int(time.time() * 1000),
        "state": state,
    }
    try:
        text = json.dumps(meta, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is not None and len(text) <= int(taskq_settings.HISTORY_REPR_LIMIT) * 4:
        event["meta"] = json.loads(text)
    return event


def exception_fields(exc: BaseException | None, traceback: str | None) -> dict[str, Any]:
    """``exc``, ``msg`` and ``tb`` of an event for a failure."""
    if exc is None:
        return {"tb": traceback[-TRACEBACK_LIMIT:]} if traceback else {}
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    fields: dict[str, Any] = {"exc": name, "msg": short_repr(str(exc), 2000)[1:-1]}
    if traceback is None and exc.__traceback__ is not None:
        traceback = "".join(tb.format_exception(cls, exc, exc.__traceback__))
    if traceback:
        fields["tb"] = traceback[-TRACEBACK_LIMIT:]
    return fields


_encoder = json.JSONEncoder(separators=(",", ":"), default=str)

#: A JSON string literal of a str (quoted and escaped; C code).
quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

#: An event: a dict, or its JSON text already (the worker's hot path builds
#: the text of a succeeded task's event directly: no dict, no encoder pass).
Event = dict[str, Any] | str


def encode_one(event: dict[str, Any]) -> str:
    """One event's JSON text (enqueue_many.lua joins those of the messages it queued)."""
    return _encoder.encode(event)


def encode(events: list[Event]) -> str:
    """One stream entry's ``e`` field."""
    return "[" + ",".join(e if type(e) is str else _encoder.encode(e) for e in events) + "]"


def received_events(fields: dict[bytes, bytes]) -> list[dict[str, Any]] | None:
    """The ``received`` events of a received entry (fetch.lua's), or None for another entry.

    One event per item of ``r``, at the entry's ``ts``, which is also its
    ``rcv``; an entry without a list or a time has none.
    """
    raw = fields.get(b"r")
    if raw is None:
        return None
    try:
        # The ids are the raw bytes of the entries fetched (cjson copies them
        # as they are): decoded leniently, as the worker decodes an entry's
        # id, so one that is not UTF-8 does not hide every other id listed.
        ids = json.loads(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)
        ts = int(fields.get(b"ts", b""))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    if not isinstance(ids, list):
        return []
    worker = fields.get(b"w")
    # An id that is not a string is kept for the caller to drop (and count).
    found: list[dict[str, Any]] = [{"k": RECEIVED, "id": i, "ts": ts, "rcv": ts} for i in ids]
    if worker:
        name = worker.decode(errors="replace")
        for event in found:
            event["w"] = name
    return found


def decode_entry(fields: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """The events of one stream entry (its fields), each with the entry's worker."""
    received = received_events(fields)
    if received is not None:
        return [e for e in received if isinstance(e["id"], str) and e["id"]]
    found = decode(fields.get(b"e", b""))
    worker = fields.get(b"w")
    if worker:
        name = worker.decode(errors="replace")
        for event in found:
            event.setdefault("w", name)
    return found


def decode(raw: bytes | str) -> list[dict[str, Any]]:
    """The events of an entry's ``e`` field; anything that is not an event is dropped."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    return [
        e
        for e in data
        if isinstance(e, dict)
        and e.get("k") in KINDS
        and isinstance(e.get("id"), str)
        and isinstance(e.get("ts"), int | float)
    ]


def write_progress(
    queue: str, task_id: str, task_name: str, state: str, meta: Any, worker: str | None
) -> None:
    """Append the ``progress`` event of ``update_state()`` to ``queue``'s events stream."""
    from django_taskq.broker import keys
    from django_taskq.broker.connection import get_broker

    client = get_broker()
    pipe = client.pipeline(transaction=False)
    queue_xadd(
        pipe, keys.events(queue), [progress_event(task_id, task_name, state, meta)], worker=worker
    )
    pipe.execute()


def entries(events: Iterable[Event]) -> list[str]:
    """The ``e`` fields of the stream entries that hold ``events``: one per ENTRY_LIMIT."""
    return text_entries([e if type(e) is str else _encoder.encode(e) for e in events])


def text_entries(texts: list[str]) -> list[str]:
    """``entries()`` of events that are JSON text already (a worker's flush: no check per event)."""
    return [
        "[" + ",".join(texts[i : i + ENTRY_LIMIT]) + "]" for i in range(0, len(texts), ENTRY_LIMIT)
    ]


def queue_xadd(pipe: Any, key: str, events: Iterable[Event], *, worker: str | None = None) -> None:
    """Queue the XADD of ``events``: one entry per ENTRY_LIMIT events, with the ``worker``.

    For events written on their own (``progress``); a worker's flush passes
    ``entries()`` to its settle.lua call instead (broker/queue_flush.py).
    """
    cap = maxlen()
    for text in entries(events):
        fields = {"e": text}
        if worker:
            fields["w"] = worker
        pipe.xadd(key, fields, maxlen=cap, approximate=True)
