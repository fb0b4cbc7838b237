"""The message envelope and its codecs.

A message is a JSON object (the *envelope*) that names the task, carries its
arguments and the options that travel with it. Values JSON cannot hold
natively (datetime, date, time, timedelta, Decimal, UUID, bytes, set) use a
tagged form ``{"__taskq__": tag, "v": value}`` so they come back as the same
type (a tuple is a JSON array, so it comes back as a list). An argument that
cannot be encoded fails in the caller, at ``delay()``, with a message naming
it. Other serializers (msgpack, pickle) and compressed bodies are in
codecs.py; a body that does not start with ``{`` is handed to it, so the
default costs one comparison.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from django_taskq.exceptions import DecodeError, EncodeError

TAG = "__taskq__"
PICKLE_MARK = "p:"


def _default(obj: Any) -> Any:
    if isinstance(obj, dt.datetime):
        return {TAG: "datetime", "v": obj.isoformat()}
    if isinstance(obj, dt.date):
        return {TAG: "date", "v": obj.isoformat()}
    if isinstance(obj, dt.time):
        return {TAG: "time", "v": obj.isoformat()}
    if isinstance(obj, dt.timedelta):
        return {TAG: "timedelta", "v": obj.total_seconds()}
    if isinstance(obj, Decimal):
        return {TAG: "decimal", "v": str(obj)}
    if isinstance(obj, uuid.UUID):
        return {TAG: "uuid", "v": str(obj)}
    if isinstance(obj, bytes | bytearray | memoryview):
        return {TAG: "bytes", "v": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, set | frozenset):
        return {TAG: "set", "v": list(obj)}
    to_dict = getattr(obj, "__taskq_json__", None)
    if to_dict is not None:
        return to_dict()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


#: tag -> (type its "v" must have, what turns "v" back into the value)
_DECODERS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "datetime": (str, dt.datetime.fromisoformat),
    "date": (str, dt.date.fromisoformat),
    "time": (str, dt.time.fromisoformat),
    "timedelta": ((int, float), lambda v: dt.timedelta(seconds=v)),
    "decimal": (str, Decimal),
    "uuid": (str, uuid.UUID),
    "bytes": (str, _b64),
    "set": (list, set),
    # A compressed result value (codecs.compress_value): base64 of compressed JSON.
    "zlib": (str, lambda v: _inflate("zlib", v)),
    "zstd": (str, lambda v: _inflate("zstd", v)),
}


def _inflate(compression: str, text: str) -> Any:
    from django_taskq.codecs import inflate_value

    return inflate_value(compression, text)


def _object_hook(obj: dict[str, Any]) -> Any:
    if TAG not in obj:
        return obj
    tag = obj[TAG]
    if not (isinstance(tag, str) and tag in _DECODERS):
        raise DecodeError(f"unknown tagged value {tag!r} in message")
    if "v" not in obj:
        raise DecodeError(f"tagged value {tag!r} has no 'v'")
    return untag(tag, obj["v"])


def untag(tag: str, value: Any) -> Any:
    """The value of a tagged form, given its (known) tag and its ``"v"``."""
    expected, decoder = _DECODERS[tag]
    if not isinstance(value, expected) or isinstance(value, bool):
        raise DecodeError(
            f"tagged value {tag!r} needs a {_type_names(expected)} in 'v', "
            f"not {type(value).__name__}"
        )
    try:
        return decoder(value)
    except Exception as exc:  # each decoder raises its own kind (ValueError, TypeError, ...)
        raise DecodeError(f"tagged value {tag!r} cannot be decoded: {exc}") from exc


def _type_names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


#: ASCII out (``ensure_ascii``): every Python string round-trips, a lone
#: surrogate included (a file name os.listdir() decoded with surrogateescape,
#: say), which UTF-8 cannot encode: with raw text out, such an argument or
#: result failed deep in redis-py, and a worker's flush failed with it for
#: every write it carried. CPython's encoder is as fast or faster this way;
#: text outside ASCII takes 6 bytes a character (12 outside the BMP) instead
#: of 2-4, as in Celery's JSON messages.
_encoder = json.JSONEncoder(default=_default, separators=(",", ":"))
_decoder = json.JSONDecoder(object_hook=_object_hook)


def dumps(value: Any) -> str:
    """Encode a value with the tagged JSON codec."""
    return _encoder.encode(value)


def loads(text: str | bytes) -> Any:
    """Decode what ``dumps`` produced.

    Raises DecodeError for a tagged value that is wrong (naming the tag),
    ValueError for text that is not JSON, and DecodeError for JSON nested
    too deeply to decode.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None


def check_encodable(
    task_name: str,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    encode: Callable[[Any], Any] = dumps,
    codec: str = "JSON",
) -> None:
    """Raise EncodeError naming the first argument ``encode`` (JSON's) cannot encode."""
    for index, value in enumerate(args):
        try:
            encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(
                f"{task_name}: positional argument {index} of type {type(value).__name__} "
                f"cannot be sent as {codec} ({exc}). Pass a {codec}-friendly value such as an "
                f"id or a dict, or opt in to pickle with TASKQ_ACCEPT_CONTENT."
            ) from exc
    for key, value in kwargs.items():
        try:
            encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(
                f"{task_name}: argument {key!r} of type {type(value).__name__} cannot be "
                f"sent as {codec} ({exc}). Pass a {codec}-friendly value such as an id or a "
                f"dict, or opt in to pickle with TASKQ_ACCEPT_CONTENT."
            ) from exc


@dataclass
class Envelope:
    """Everything a worker needs to run one task call."""

    id: str
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    priority: int = 5
    retries: int = 0
    eta: float | None = None  # epoch seconds
    expires: float | None = None  # epoch seconds
    headers: dict[str, Any] = field(default_factory=dict)
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    ignore_result: bool = False
    time_limit: float | None = None
    soft_time_limit: float | None = None
    link: list[dict[str, Any]] = field(default_factory=list)
    link_error: list[dict[str, Any]] = field(default_factory=list)
    chord: dict[str, Any] | None = None
    sent_at: float = field(default_factory=time.time)

    def encode(self, serializer: str = "json", compression: str | None = None) -> str | bytes:
        """The message body (str for JSON and pickle, else bytes; codecs.py).

        Raises EncodeError naming a bad argument, ImproperlyConfiguredTaskq
        for a serializer or compression that is unknown or whose library is
        not installed.
        """
        # Shallow on purpose: asdict() deep-copies by rebuilding each value's
        # type, which breaks dict subclasses such as a Signature argument.
        names = _ENVELOPE_NAMES if type(self) is Envelope else [f.name for f in fields(self)]
        data = {name: getattr(self, name) for name in names}
        if serializer != "json" or compression:
            from django_taskq.codecs import encode_body

            return encode_body(self, data, serializer, compression)
        return self.encode_json(data)

    def encode_json(self, data: dict[str, Any]) -> str:
        """The JSON body of ``data`` (this envelope's fields); EncodeError names a bad one."""
        try:
            return dumps(data)
        except (TypeError, ValueError):
            check_encodable(self.task, self.args, self.kwargs)
            for name in ("headers", "link", "link_error", "chord"):
                try:
                    dumps(data[name])
                except (TypeError, ValueError) as exc:
                    raise EncodeError(
                        f"{self.task}: option {name!r} cannot be sent: {exc}"
                    ) from exc
            raise

    @classmethod
    def decode(cls, body: str | bytes, accept: list[str] | tuple[str, ...] = ("json",)) -> Envelope:
        """Parse and check a message body; DecodeError names what is wrong with it.

        Every field is checked (types, ranges, the structure of workflow
        options), so a worker never runs, or crashes on, a message it does
        not understand: it dead-letters it with this reason instead. JSON
        is always accepted; other codecs only when ``accept`` lists them.
        """
        first = body[:1]
        if first == b"{" or first == "{":
            data = parse_json(body)
        else:
            from django_taskq.codecs import decode_body

            data = decode_body(body, accept)
        if not isinstance(data, dict):
            raise DecodeError(
                f"message body must be a JSON object (a msgpack map), got {type(data).__name__}"
            )
        from django_taskq.envelope_checks import check_fields

        check_fields(data)
        known = _ENVELOPE_FIELDS if cls is Envelope else frozenset(cls.__dataclass_fields__)
        if not data.keys() <= known:
            for name in data.keys() - known:
                data.pop(name)
        if cls is Envelope and len(data) == len(known):
            # Every field is present (a body made by encode()): skip __init__'s
            # keyword matching; the result is the same object cls(**data) makes.
            envelope = cls.__new__(cls)
            envelope.__dict__.update(data)
            return envelope
        try:
            return cls(**data)
        except TypeError as exc:  # pragma: no cover - check_fields() covers the fields
            raise DecodeError(f"message {data.get('id')}: {exc}") from exc


def parse_json(body: str | bytes) -> Any:
    """The value of a JSON message body; DecodeError says why it is not one."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"message body is not UTF-8: {exc}") from exc
    try:
        return loads(body)
    except DecodeError as exc:
        raise DecodeError(f"message body: {exc}") from exc
    except ValueError as exc:
        raise DecodeError(f"message body is not valid JSON: {exc}") from exc


#: Field names of Envelope (unknown fields in a message are dropped).
_ENVELOPE_FIELDS = frozenset(Envelope.__dataclass_fields__)
#: The envelope's field names in their order (a body's keys follow it).
_ENVELOPE_NAMES = tuple(f.name for f in fields(Envelope))


def new_id() -> str:
    return str(uuid.uuid4())
