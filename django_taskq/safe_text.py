"""Text read from Redis made safe to encode: for a page, a log line or a database column.

Redis holds whatever bytes a client wrote. Decoded with ``errors="replace"``
they are valid text, but JSON decoded from them can still hold a lone
surrogate (``"\\ud800"``, or the bytes of an encoded surrogate, which
``json.loads`` lets through): such a string cannot be encoded as UTF-8, so a
page that shows it fails with a 500 and a database driver refuses it. And
PostgreSQL's text and jsonb refuse NUL. These functions replace what cannot
be kept with U+FFFD, the replacement character, and leave everything else
(a valid surrogate pair stays the character it encodes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REPLACEMENT = "\ufffd"


def encodable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it encodes as UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def storable(text: str) -> str:
    """``encodable(text)`` with NUL replaced too: what every database's text column holds."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    return encodable(text)


def encodable_json(value: Any) -> Any:
    """``value`` (decoded JSON) with every string in it, keys too, made ``encodable()``."""
    return _deep(value, encodable)


def storable_json(value: Any) -> Any:
    """``value`` (decoded JSON) with every string in it, keys too, made ``storable()``."""
    return _deep(value, storable)


def _deep(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list):
        return [_deep(item, clean) for item in value]
    if isinstance(value, dict):
        return {clean(str(k)): _deep(v, clean) for k, v in value.items()}
    return value
