"""Checks of a decoded message's fields, each failure naming the field.

A worker must be able to tell, before it runs anything, that it understands
a message: a wrong type anywhere (a string time limit, a chord without a
size, a link that is not a signature) would otherwise crash the worker or
loop it on the same entry. ``check_fields`` raises ``DecodeError`` saying
which field is wrong and how; the worker dead-letters the message with that
reason. Bodies made by ``Envelope.encode()`` always pass.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from django_taskq.exceptions import DecodeError
from django_taskq.safe_text import encodable

#: Longest task id accepted (ids go into Redis key names).
MAX_ID_LENGTH = 255
#: Longest task id in bytes of UTF-8: the entry's ``i`` field a worker takes
#: (worker/entries.py) and what ``apply_async(task_id=...)`` accepts (task.py).
MAX_ID_BYTES = 255
#: What a name or id holding a lone surrogate is told.
_NOT_TEXT = "must be valid Unicode text (it holds a lone surrogate)"


def _fail(data: dict[str, Any], name: str, problem: str, value: Any) -> DecodeError:
    task_id = data.get("id") if isinstance(data.get("id"), str) else "?"
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    # The dead letter's reason is made encodable where it is written (worker/streams.py).
    return DecodeError(f"message {task_id}: field {name!r} {problem}, not {shown}")


def _is_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8: no lone surrogate (JSON ``"\\ud800"``).

    The names and ids of a message go into Redis keys, counters and events as
    they are; a lone surrogate there made every write of the worker's flush
    fail with it.
    """
    return value.isascii() or encodable(value) is value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_fields(data: dict[str, Any]) -> None:
    """Raise DecodeError naming the first field of ``data`` a worker cannot use.

    Runs for every message a worker takes, so the common case (every field
    present and right, as ``encode()`` makes them) is a run of cheap type
    checks; the messages are built only for a failure.
    """
    get = data.get
    task_id, task = get("id"), get("task")
    if type(task_id) is not str or not task_id:
        raise _fail(data, "id", "must be a non-empty string", task_id)
    if len(task_id) > MAX_ID_LENGTH:
        raise _fail(data, "id", f"must be at most {MAX_ID_LENGTH} characters", task_id)
    if type(task) is not str or not task:
        raise _fail(data, "task", "must be a non-empty string", task)
    for name, text in (("id", task_id), ("task", task)):
        if not _is_text(text):
            raise _fail(data, name, _NOT_TEXT, text)
    args = get("args", ())
    if type(args) is not list and "args" in data:
        raise _fail(data, "args", "must be a list", args)
    kwargs = get("kwargs")
    if kwargs is not None and (type(kwargs) is not dict or not all(type(k) is str for k in kwargs)):
        raise _fail(data, "kwargs", "must be an object with string keys", kwargs)
    if "kwargs" in data and kwargs is None:
        raise _fail(data, "kwargs", "must be an object with string keys", kwargs)
    queue = get("queue")
    if queue is not None or "queue" in data:
        from django_taskq.broker.keys import QUEUE_NAME

        if type(queue) is not str or not QUEUE_NAME.match(queue) or not _is_text(queue):
            raise _fail(data, "queue", "must be a queue name", queue)
    priority = get("priority", 5)
    if type(priority) is not int or not 0 <= priority <= 9:
        raise _fail(data, "priority", "must be an integer from 0 to 9", priority)
    retries = get("retries", 0)
    if type(retries) is not int or retries < 0:
        raise _fail(data, "retries", "must be an integer >= 0", retries)
    for name in ("eta", "expires"):
        value = get(name)
        if value is not None and not _is_number(value):
            raise _fail(data, name, "must be a finite number (epoch seconds) or null", value)
    if "sent_at" in data and not _is_number(get("sent_at")):
        raise _fail(data, "sent_at", "must be a finite number (epoch seconds)", get("sent_at"))
    for name in ("time_limit", "soft_time_limit"):
        value = get(name)
        if value is not None and (not _is_number(value) or value <= 0):
            raise _fail(data, name, "must be a positive number of seconds or null", value)
    headers = get("headers", {})
    if type(headers) is not dict:
        raise _fail(data, "headers", "must be an object", headers)
    for name in ("root_id", "parent_id", "group_id"):
        value = get(name)
        if value is not None and type(value) is not str:
            raise _fail(data, name, "must be a string or null", value)
        if value and not _is_text(value):
            raise _fail(data, name, _NOT_TEXT, value)
    group_index = get("group_index")
    if group_index is not None and (not _is_int(group_index) or group_index < 0):
        raise _fail(data, "group_index", "must be an integer >= 0 or null", group_index)
    if type(get("ignore_result", False)) is not bool:
        raise _fail(data, "ignore_result", "must be true or false", get("ignore_result"))
    for name in ("link", "link_error"):
        value = get(name, ())
        if value or (name in data and type(value) is not list):
            _check_signatures(data, name, value)
    chord = get("chord")
    if chord is not None:
        _check_chord(data, chord, group_index)


def _check_signatures(data: dict[str, Any], name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _fail(data, name, "must be a list of signatures", value)
    for index, item in enumerate(value):
        _check_signature(data, f"{name}[{index}]", item)


def _check_signature(data: dict[str, Any], name: str, value: Any) -> None:
    """A signature's dict form must rebuild (task name, args, options of the right types)."""
    if not isinstance(value, dict) or not isinstance(value.get("task"), str):
        raise _fail(data, name, "must be a signature (an object with a 'task' name)", value)
    from django_taskq.signatures import signature

    try:
        signature(value)
    except Exception as exc:
        raise _fail(data, name, f"is not a valid signature ({exc})", value) from exc


def _check_chord(data: dict[str, Any], chord: Any, group_index: Any) -> None:
    if not isinstance(chord, dict):
        raise _fail(data, "chord", "must be an object {id, size, body}", chord)
    if not isinstance(chord.get("id"), str) or not chord["id"]:
        raise _fail(data, "chord.id", "must be a non-empty string", chord.get("id"))
    if not _is_text(chord["id"]):
        raise _fail(data, "chord.id", _NOT_TEXT, chord["id"])
    size = chord.get("size")
    if not _is_int(size) or size < 1:
        raise _fail(data, "chord.size", "must be an integer >= 1", size)
    if not _is_int(group_index) or group_index >= size:
        raise _fail(
            data,
            "group_index",
            f"must be the header index, 0 to {size - 1}, in a chord",
            group_index,
        )
    _check_signature(data, "chord.body", chord.get("body"))
