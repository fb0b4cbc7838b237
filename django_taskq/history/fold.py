"""Fold task events into ``TaskRecord`` values: the recorder's merge rules, without I/O.

A row is built from the events of its task in whatever order they arrive
(a worker's ``succeeded`` may be read before the producer's ``sent``, a
late ``started`` after the end), so each event is applied to the row as it
stands by rules that do not depend on order:

- **The state only moves forward**: PENDING < RECEIVED < STARTED < a custom
  state (``progress``) < RETRY < a final state. An event that would move it
  back (a ``started`` read after ``succeeded``) does not change the state,
  and only fills fields the row does not have yet.
- **Between final states the later one wins** (by event time), so a task
  that ends twice (a duplicate delivery) shows its last ending.
- **A later ``sent`` replaces the send fields** (beat sends a periodic run
  again under the same id); an earlier one read late only fills blanks.
  The ETA is the latest one seen (a retry's comes after its send's).
- ``progress`` sets the row's progress and custom state while the task has
  not ended; its ending clears the progress.
- ``dead`` marks the row dead-lettered for good, with its reason.

Applying an event twice leaves the row as it was, so replaying a stream
converges on the same rows. Nothing read from Redis is trusted: a value of
the wrong type is ignored, strings are cut to their column's length and
made storable (``storable()``), and an event without a usable kind, id or
time is dropped (and counted).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django_taskq import states
from django_taskq.events import (
    DEAD,
    EXPIRED,
    FAILED,
    PROGRESS,
    RECEIVED,
    RETRIED,
    REVOKED,
    SENT,
    STARTED,
    SUCCEEDED,
    received_events,
)
from django_taskq.safe_text import storable, storable_json

#: The state each kind of event puts a row in (``progress`` carries its own).
KIND_STATE = {
    SENT: states.PENDING,
    RECEIVED: states.RECEIVED,
    STARTED: states.STARTED,
    RETRIED: states.RETRY,
    SUCCEEDED: states.SUCCESS,
    FAILED: states.FAILURE,
    REVOKED: states.REVOKED,
    EXPIRED: states.REVOKED,
    DEAD: states.FAILURE,
}
KINDS = frozenset({*KIND_STATE, PROGRESS})
FINAL_KINDS = frozenset({SUCCEEDED, FAILED, REVOKED, EXPIRED, DEAD})

_RANK = {
    states.PENDING: 0,
    states.RECEIVED: 1,
    states.STARTED: 2,
    states.RETRY: 4,
    states.SUCCESS: 5,
    states.FAILURE: 5,
    states.REVOKED: 5,
}
#: A custom state (update_state) ranks after STARTED and before RETRY.
CUSTOM_RANK = 3
FINAL_RANK = 5

#: Longest value of each text column that has a limit (the model's max_length).
LIMITS = {
    "task_id": 255,
    "task_name": 255,
    "state": 50,
    "exception_type": 255,
    "queue": 200,
    "worker": 255,
    "parent_id": 255,
    "root_id": 255,
    "group_id": 255,
    "periodic_task_name": 200,
    "retry_of": 255,
}

#: The fields a ``sent`` event owns.
SEND_FIELDS = (
    "task_name",
    "args",
    "kwargs",
    "priority",
    "expires",
    "sent_at",
    "parent_id",
    "root_id",
    "group_id",
    "periodic_task_name",
    "retry_of",
    "body",
)

#: Every column the recorder writes, with the value of a row it has not seen.
DEFAULTS: dict[str, Any] = {
    "task_name": "",
    "state": states.PENDING,
    "dead_lettered": False,
    "reason": "",
    "args": "",
    "kwargs": "",
    "result": "",
    "exception_type": "",
    "exception_message": "",
    "traceback": "",
    "progress": None,
    "queue": "",
    "priority": None,
    "worker": "",
    "retries": 0,
    "delivery_count": 0,
    "sent_at": None,
    "eta": None,
    "expires": None,
    "received_at": None,
    "started_at": None,
    "finished_at": None,
    "runtime": None,
    "wait_time": None,
    "parent_id": "",
    "root_id": "",
    "group_id": "",
    "periodic_task_name": "",
    "retry_of": "",
    "body": "",
}
COLUMNS = tuple(DEFAULTS)


def rank(state: str) -> int:
    """Where ``state`` stands in the forward order (a custom state between STARTED and RETRY)."""
    return _RANK.get(state, CUSTOM_RANK)


# -- reading an entry ------------------------------------------------------------
@dataclass
class Parsed:
    """The usable events of some stream entries, and how many were not."""

    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0


def parse_entry(fields: dict[bytes, bytes], into: Parsed) -> None:
    """Add the events of one stream entry to ``into`` (each with the entry's worker).

    Unlike ``events.decode``, this counts what it drops, and it knows the
    ``progress`` kind; an event of a kind it does not know is dropped too.
    A received entry (fetch.lua's ``r`` list) is one ``received`` event per
    task id.
    """
    received = received_events(fields)
    if received is not None:
        if not received:
            into.dropped += 1  # nothing in it could be read
        for event in received:
            if _usable(event):
                into.events.append(event)
            else:
                into.dropped += 1
        return
    raw = fields.get(b"e")
    try:
        data = json.loads(raw) if raw is not None else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        into.dropped += 1
        return
    worker = fields.get(b"w")
    name = storable(worker.decode(errors="replace")) if worker else None
    for event in data:
        if not _usable(event):
            into.dropped += 1
            continue
        if name and not isinstance(event.get("w"), str):
            event["w"] = name
        into.events.append(event)


def _usable(event: Any) -> bool:
    """Whether ``event`` has a known kind, an id and a time; makes its id ``storable()``."""
    if not isinstance(event, dict) or event.get("k") not in KINDS:
        return False
    task_id = event.get("id")
    if not isinstance(task_id, str) or not 0 < len(task_id) <= LIMITS["task_id"]:
        return False
    event["id"] = storable(task_id)
    ts = event.get("ts")
    return isinstance(ts, int | float) and not isinstance(ts, bool) and 0 <= ts < 1e14


# -- values ----------------------------------------------------------------------
def _text(event: dict[str, Any], key: str, column: str | None = None) -> str | None:
    value = event.get(key)
    if not isinstance(value, str):
        return None
    limit = LIMITS.get(column or "")
    return storable(value[:limit] if limit else value)


def _count(event: dict[str, Any], key: str) -> int | None:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        return None
    return value


def _ms(event: dict[str, Any], key: str) -> dt.datetime | None:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e14:
        return None
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


def _seconds(event: dict[str, Any], key: str) -> dt.datetime | None:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def _set(row: dict[str, Any], column: str, value: Any, overwrite: bool) -> None:
    """Write ``value`` (if known) when ``overwrite``, else only into a blank column."""
    if value is None:
        return
    if overwrite or row[column] in (None, "", 0):
        row[column] = value


# -- the merge -------------------------------------------------------------------
def new_row(queue: str) -> dict[str, Any]:
    """The values of a row not written yet."""
    return {**DEFAULTS, "queue": storable(queue[: LIMITS["queue"]])}


def apply(row: dict[str, Any], event: dict[str, Any]) -> None:
    """Apply one event to ``row`` (a dict of COLUMNS values), by the rules of the module doc."""
    kind = event["k"]
    ts = _ms(event, "ts")
    name = _text(event, "n", "task_name")
    if name:
        _set(row, "task_name", name, overwrite=not row["task_name"])
    if kind == SENT:
        _apply_sent(row, event, ts)
        return
    if kind == PROGRESS:
        _apply_progress(row, event)
        return
    new_state = KIND_STATE[kind]
    current = rank(row["state"])
    if kind in FINAL_KINDS:
        wins = current < FINAL_RANK or (
            row["finished_at"] is not None and ts is not None and ts > row["finished_at"]
        )
    else:
        wins = rank(new_state) >= current
    if wins:
        row["state"] = new_state
    if kind in FINAL_KINDS and wins:
        row["finished_at"] = ts
        row["progress"] = None
    _apply_attempt(row, event, wins)
    if kind == SUCCEEDED:
        _set(row, "result", _text(event, "res"), wins)
    if kind in (RETRIED, FAILED, DEAD):
        _set(row, "exception_type", _text(event, "exc", "exception_type"), wins)
        _set(row, "exception_message", _text(event, "msg"), wins)
        _set(row, "traceback", _text(event, "tb"), wins)
    if kind in (RETRIED, REVOKED, EXPIRED, DEAD):
        _set(row, "reason", _text(event, "msg"), wins)
    if kind == RETRIED:
        _later_eta(row, _seconds(event, "eta"))
    if kind == DEAD:
        row["dead_lettered"] = True


def _apply_sent(row: dict[str, Any], event: dict[str, Any], ts: dt.datetime | None) -> None:
    later = row["sent_at"] is None or (ts is not None and ts >= row["sent_at"])
    values = {
        "task_name": _text(event, "n", "task_name"),
        "args": _text(event, "a"),
        "kwargs": _text(event, "kw"),
        "priority": p if (p := _count(event, "pr")) is not None and p <= 9 else None,
        "expires": _seconds(event, "exp"),
        "sent_at": ts,
        "parent_id": _text(event, "par", "parent_id"),
        "root_id": _text(event, "root", "root_id"),
        "group_id": _text(event, "grp", "group_id"),
        "periodic_task_name": _text(event, "per", "periodic_task_name"),
        "retry_of": _text(event, "rof", "retry_of"),
        "body": _text(event, "body"),
    }
    if later:
        # A send replaces everything the previous send said, blanks included.
        for column in SEND_FIELDS:
            value = values[column]
            row[column] = value if value is not None else DEFAULTS[column]
        if not row["task_name"]:
            row["task_name"] = values["task_name"] or ""
    else:
        for column in SEND_FIELDS:
            _set(row, column, values[column], overwrite=False)
    _later_eta(row, _seconds(event, "eta"))
    retries = _count(event, "rty")
    if retries is not None:
        row["retries"] = max(row["retries"], retries)


def _later_eta(row: dict[str, Any], eta: dt.datetime | None) -> None:
    """Keep the latest due time: a retry's is after its send's, a re-send's after the first."""
    if eta is not None and (row["eta"] is None or eta > row["eta"]):
        row["eta"] = eta


def _apply_progress(row: dict[str, Any], event: dict[str, Any]) -> None:
    current = rank(row["state"])
    if current >= FINAL_RANK:
        return  # a report read after the task ended says nothing new
    state = _text(event, "state", "state")
    if state and rank(state) == CUSTOM_RANK and current <= CUSTOM_RANK:
        row["state"] = state
    try:
        row["progress"] = storable_json(event.get("meta"))
    except RecursionError:  # nested as deep as json.loads allows: not worth a progress bar
        row["progress"] = None
    _set(row, "worker", _text(event, "w", "worker"), overwrite=False)


def _apply_attempt(row: dict[str, Any], event: dict[str, Any], wins: bool) -> None:
    """When and where the task ran: from the event that decides the state, else into blanks."""
    _set(row, "received_at", _ms(event, "rcv"), wins)
    _set(
        row,
        "started_at",
        _ms(event, "st") or (_ms(event, "ts") if event["k"] == STARTED else None),
        wins,
    )
    _set(row, "worker", _text(event, "w", "worker"), wins)
    _set(row, "delivery_count", _count(event, "dc"), wins)
    runtime = _count(event, "rt")
    _set(row, "runtime", runtime / 1_000_000 if runtime is not None else None, wins)
    retries = _count(event, "rty")
    if retries is not None:
        row["retries"] = max(row["retries"], retries)


def finish(row: dict[str, Any]) -> None:
    """Derive the columns computed from others (the wait before the task started)."""
    started, sent, eta = row["started_at"], row["sent_at"], row["eta"]
    if started is None or sent is None:
        row["wait_time"] = None
        return
    due = eta if eta is not None and eta > sent else sent
    row["wait_time"] = max(0.0, (started - due).total_seconds())


def fold(
    events: Iterable[tuple[str, dict[str, Any]]], existing: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The rows of the tasks ``events`` are about, merged into their ``existing`` values.

    ``events`` are (queue, event) in the order read; ``existing`` maps a task id
    to its row's current COLUMNS values. Returns task id -> new values.
    """
    rows: dict[str, dict[str, Any]] = {}
    for queue, event in events:
        task_id = event["id"]
        row = rows.get(task_id)
        if row is None:
            found = existing.get(task_id)
            row = dict(found) if found is not None else new_row(queue)
            rows[task_id] = row
        apply(row, event)
    for row in rows.values():
        finish(row)
    return rows
