"""A message body outside a worker: what it holds, why it cannot be read, how text keeps it.

A worker decodes a body with ``Envelope.decode`` and its own
TASKQ_ACCEPT_CONTENT. The web process and the management commands read
bodies for other ends: to show a dead letter or a queued message, to send a
message again (the history's Retry, a dead letter's requeue). They all go
through ``read()``, so each of them reads msgpack and compressed bodies
alike (codecs.py), never unpickles (that runs code), bounds what it
inflates, and says why a body cannot be read, telling apart a body that is
broken from one that only this process cannot read (a codec's library is
not installed here; workers may have it).

Where only text can go (a ``sent`` event, ``TaskRecord.body``, the rows of
``control.dead_letters()``), a body that is not UTF-8 (msgpack or
compressed bytes, as a rule) is written by ``to_text()`` as ``base64:`` and
the base64 of the whole body, header included; ``from_text()`` gives the
bytes back. UTF-8 bodies (JSON, ``p:``) stay as they are.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from django_taskq import codecs
from django_taskq.exceptions import DecodeError

#: How text marks a body kept as base64 (no body starts with it: see codecs.py).
TEXT_MARK = "base64:"

#: What ``content`` a plain JSON body has (and one that names no codec at all).
JSON = "json"


@dataclass(frozen=True)
class Read:
    """What ``read()`` made of a body.

    ``data`` is the envelope dict when the bytes decode (even if a field is
    wrong: a page still shows it); ``problem`` says why a worker would
    refuse it, empty when it would not; ``here_only`` is True when the
    problem is this process's (a library missing, pickle not read here),
    not the body's.
    """

    content: str
    data: dict[str, Any] | None
    problem: str = ""
    here_only: bool = False

    @property
    def ok(self) -> bool:
        """True when a worker that accepts its content would take the message."""
        return self.data is not None and not self.problem


def content_of(body: str | bytes) -> str:
    """The serializer and compression a body names: ``json``, ``msgpack``, ``json+zlib``, ..."""
    raw = _raw(body)
    header = codecs.header_of(raw) if raw[:1] != b"{" else None
    if header is None:
        return JSON
    serializer, compression = header
    return f"{serializer}+{compression}" if compression else serializer


def read(body: str | bytes, limit: int = codecs.MAX_INFLATED) -> Read:
    """The envelope dict of ``body`` as a worker accepting every safe codec would read it.

    Never raises for what the body holds: the reason comes back in
    ``problem``. Inflates at most ``limit`` bytes; never unpickles.
    """
    raw = _raw(body)
    content = content_of(raw)
    serializer, _, compression = content.partition("+")
    if serializer == "pickle":
        return Read(content, None, "message is pickled: not unpickled here (that runs code)", True)
    for codec in (serializer, compression):
        if codec and codec in codecs.OPTIONAL and codecs.missing(codec):
            return Read(
                content,
                None,
                f"{content} body: {codec} {codecs.needs(codec)} (not installed in this process; "
                "workers that have it can read it)",
                True,
            )
    try:
        if content == JSON:
            from django_taskq.messages import parse_json

            data = parse_json(raw)
        else:
            data = codecs.decode_body(raw, codecs.SAFE, limit)
    except DecodeError as exc:
        return Read(content, None, str(exc))
    except Exception as exc:  # RecursionError of a body nested too deep, MemoryError, ...
        return Read(content, None, f"message body cannot be decoded: {type(exc).__name__}")
    if not isinstance(data, dict):
        return Read(content, None, f"message body is a {type(data).__name__}, not an object")
    from django_taskq.envelope_checks import check_fields

    try:
        check_fields(data)
    except DecodeError as exc:
        return Read(content, data, str(exc))
    return Read(content, data)


def to_text(body: str | bytes) -> str:
    """``body`` as text that ``from_text()`` turns back into the same body.

    UTF-8 bodies (JSON, ``p:``) stay as they are; other bytes are base64.
    """
    text: str | None
    if isinstance(body, str):
        text = body
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None and not text.startswith(TEXT_MARK):
        return text
    raw = _raw(body)
    return TEXT_MARK + base64.b64encode(raw).decode("ascii")


def from_text(text: str) -> str | bytes:
    """The body that ``to_text()`` wrote as ``text``; DecodeError if its base64 is broken."""
    if not text.startswith(TEXT_MARK):
        return text
    try:
        return base64.b64decode(text[len(TEXT_MARK) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"kept message body is not valid base64: {exc}") from None


def _raw(body: str | bytes) -> bytes:
    return body if isinstance(body, bytes) else body.encode("utf-8", "replace")
