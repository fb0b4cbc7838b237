"""Show a queued message to a person: its task, id and arguments, whatever bytes Redis holds.

The live views list messages nobody has checked yet: a stream entry or a
delayed member can be anything a client wrote (a truncated body, bytes that
are not UTF-8, JSON of the wrong shape, a body nested ten thousand deep).
``describe()`` never raises: what it cannot read comes back with the task
``UNREADABLE`` and the reason in ``args``, so a page shows the entry
instead of failing. Arguments are decoded with the message codec (a
datetime shows as a datetime) and shortened with reprlib, so a message
with megabytes of arguments costs a page little. msgpack and compressed
bodies are decoded (bodies.read, inflated to MAX_DECODE at most) and
their ``content`` (``msgpack+zlib``) is shown; one that this process cannot
decode (a codec's library not installed here, corrupt bytes) is shown as
unreadable with the reason. Pickled bodies (TASKQ_ACCEPT_CONTENT) are never
unpickled here: unpickling runs code.
"""

from __future__ import annotations

import json
import re
import reprlib
from dataclasses import dataclass
from typing import Any

from django_taskq import bodies
from django_taskq.safe_text import encodable

#: The task shown for an entry whose body cannot be read; ``args`` says why.
UNREADABLE = "(unreadable)"

#: Most characters shown of a message's args or kwargs.
MAX_CHARS = 500
#: A body longer than this is not decoded; its task name is still shown.
MAX_DECODE = 1 << 20

_TASK_FIELD = re.compile(rb'"task"\s*:\s*("(?:[^"\\]|\\.){0,400}")')


def _repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel = 4
    short.maxlist = short.maxtuple = short.maxset = short.maxdict = 20
    short.maxstring = 200
    short.maxother = 200
    return short


_short = _repr()


@dataclass(frozen=True)
class Shown:
    """What a page shows of one message body.

    ``content`` is the body's serializer and compression as its header
    names them (``"msgpack+zlib"``; ``"json"`` for a plain JSON body).
    """

    task_id: str
    task: str
    args: str
    kwargs: str
    content: str = bodies.JSON


def text(value: Any, limit: int = 200) -> str:
    """``value`` (bytes or anything) as text of at most ``limit`` characters, encodable.

    A lone surrogate (from JSON) becomes U+FFFD: the page could not be
    encoded as UTF-8 with it, and would fail with a 500.
    """
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    out = encodable(str(value))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def short_repr(value: Any) -> str:
    """A repr of ``value`` cut to MAX_CHARS, cheap however large ``value`` is."""
    try:
        return text(_short.repr(value), MAX_CHARS)
    except Exception as exc:  # a repr of decoded JSON values should not fail; never let it
        return f"(cannot show: {type(exc).__name__})"


def unreadable(task_id: str, reason: str, raw: Any = b"", content: str = bodies.JSON) -> Shown:
    preview = f": {text(raw, 120)!r}" if raw else ""
    return Shown(task_id, UNREADABLE, f"{reason}{preview}", "", content)


def describe(raw_id: Any, body: Any) -> Shown:
    """The task id, task name and arguments of a message body, or why they cannot be read."""
    task_id = text(raw_id, 200) if raw_id else ""
    if body is None:
        return unreadable(task_id, "no body")
    raw = body if isinstance(body, bytes) else str(body).encode(errors="replace")
    content = bodies.content_of(raw)
    if content.startswith("pickle"):
        return Shown(task_id, "(pickled)", "(pickled arguments are not shown)", "", content)
    if len(raw) > MAX_DECODE:
        shown = f"({len(raw)} bytes of body, not shown)"
        return Shown(task_id, _task_name_of(raw), shown, "", content)
    found = bodies.read(raw, limit=MAX_DECODE)  # never inflated past MAX_DECODE here
    envelope: Any = found.data
    if envelope is None and content == bodies.JSON:
        try:  # a tagged value the codec refuses: show the plain JSON instead
            envelope = json.loads(raw)
        except Exception as exc:
            return unreadable(task_id, f"body is not JSON ({text(exc, 80)})", raw)
    if envelope is None:
        # Binary bytes say nothing to a person: the reason and the header do.
        return unreadable(
            task_id, f"body cannot be decoded ({text(found.problem, 200)})", "", content
        )
    if not isinstance(envelope, dict):
        return unreadable(task_id, f"body is a JSON {type(envelope).__name__}", raw)
    task = envelope.get("task")
    if not task_id and envelope.get("id"):
        task_id = text(envelope["id"], 200)
    if not isinstance(task, str) or not task:
        return unreadable(
            task_id, "body names no task", raw if content == bodies.JSON else "", content
        )
    return Shown(
        task_id,
        text(task, 200),
        short_repr(envelope.get("args", [])),
        short_repr(envelope.get("kwargs", {})),
        content,
    )


def _task_name_of(raw: bytes) -> str:
    """The task name of a body too large to decode, from its first kilobytes."""
    found = _TASK_FIELD.search(raw[:4096])
    if found:
        try:
            name = json.loads(found.group(1))
        except ValueError:
            name = None
        if isinstance(name, str) and name:
            return text(name, 200)
    return UNREADABLE
