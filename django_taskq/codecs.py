"""Serializers and compressions of message bodies, and compressed results.

A message body is one of (the first byte tells which, so the default costs
one comparison):

- ``{...}``: the JSON envelope (messages.py), the default and the only form
  of older versions;
- ``p:`` + base64 of a pickle of the envelope dict (pickle, uncompressed, as
  older versions write it);
- an ASCII header ``<serializer>[+<compression>]:`` and then raw bytes:
  ``msgpack:``, ``json+zlib:``, ``msgpack+zstd:``, ``pickle+zlib:``, ...
  The bytes after the colon are the serialized envelope, compressed when the
  header names a compression (a zlib stream, RFC 1950; a zstd frame,
  RFC 8878).

msgpack carries the envelope as a map with the same values the JSON form
holds; bytes are msgpack ``bin``, and the values JSON tags (datetime, date,
time, timedelta, Decimal, UUID, set) plus tuple are msgpack extension types
whose data is the msgpack encoding of the tagged form's ``"v"`` (``EXT_CODES``).

A worker decodes only what ``TASKQ_ACCEPT_CONTENT`` lists (JSON always);
anything else, a body that claims a codec and does not decode, or one that
would inflate past ``MAX_INFLATED``, raises DecodeError naming what is wrong
or what to add to which setting, and the worker dead-letters it.

A result value is compressed inside its JSON record (``compress_value``), so
store_result.lua and every reader still see ``{"status": ...}`` first: the
value becomes ``{"__taskq__": "zlib" | "zstd", "v": <base64 of the
compressed JSON text of the value>}``, which ``messages.loads`` turns back
into the value.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import threading
import uuid
import zlib
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from django_taskq.conf import affects_taskq, taskq_settings
from django_taskq.exceptions import DecodeError, EncodeError, ImproperlyConfiguredTaskq
from django_taskq.messages import PICKLE_MARK, TAG, check_encodable, dumps, loads, untag
from django_taskq.registry import registry

if TYPE_CHECKING:
    from django_taskq.messages import Envelope

SERIALIZERS = ("json", "msgpack", "pickle")
COMPRESSIONS = ("zlib", "zstd")
#: Written as an option or a setting, "none" turns compression off (over a setting).
NO_COMPRESSION = "none"
#: Every name TASKQ_ACCEPT_CONTENT may list.
CONTENT = SERIALIZERS + COMPRESSIONS
#: What is safe to decode from a Redis others may write to: all but pickle.
SAFE = ("json", "msgpack", "zlib", "zstd")

#: codec -> (the module it needs, the package to install, the extra that installs it)
OPTIONAL: dict[str, tuple[str, str, str]] = {
    "msgpack": ("msgpack", "msgpack", "msgpack"),
    "zstd": ("zstandard", "zstandard", "zstd"),
}

#: A body or result that inflates past this is refused (a decompression bomb);
#: Redis holds at most 512 MiB in one value, so nothing sent uncompressed is.
MAX_INFLATED = 512 << 20

#: zlib level: 6 is zlib's own default; zstd level 3 is zstd's.
ZLIB_LEVEL = 6
ZSTD_LEVEL = 3

_HEADER = re.compile(rb"([a-z]{1,16})(?:\+([a-z0-9]{1,16}))?:")

#: msgpack extension type code -> the tag of the same value in the JSON form.
EXT_CODES: dict[int, str] = {
    1: "datetime",
    2: "date",
    3: "time",
    4: "timedelta",
    5: "decimal",
    6: "uuid",
    7: "set",
    8: "tuple",
}


# -- names and libraries --------------------------------------------------------
def needs(codec: str) -> str:
    """The sentence that says how to install what ``codec`` needs."""
    _module, package, extra = OPTIONAL[codec]
    return f"needs the {package} package: pip install django-taskq-streams[{extra}]"


def _module(codec: str) -> ModuleType | None:
    """The library of an optional codec, or None when it is not installed."""
    import importlib

    try:
        return importlib.import_module(OPTIONAL[codec][0])
    except ImportError:
        return None


def missing(codec: str) -> bool:
    """True when ``codec`` needs a library this process cannot import."""
    return codec in OPTIONAL and _module(codec) is None


def check_option(owner: str, option: str, value: Any) -> None:
    """Raise ValueError unless ``value`` names a serializer/compression (for an option).

    ``option`` is "serializer", "compression" or "result_compression";
    ``owner`` names the task (and the call) in the message.
    """
    if value is None:
        return
    if option == "serializer":
        if value not in SERIALIZERS:
            raise ValueError(
                f"{owner}: serializer={value!r} is not a serializer; use 'json' (the default), "
                f"'msgpack' or 'pickle'"
            )
        return
    if value not in COMPRESSIONS and value != NO_COMPRESSION:
        raise ValueError(
            f"{owner}: {option}={value!r} is not a compression; use 'zlib', 'zstd' "
            f"(pip install django-taskq-streams[zstd]) or 'none'"
        )


def choose(
    task_name: str, serializer: str | None = None, compression: str | None = None
) -> tuple[str, str | None]:
    """The serializer and compression of a message: the call's, else the task's, else the settings'.

    The task's are its ``@shared_task(serializer=..., compression=...)``
    when it is registered in this process. (On every send: kept cheap.)
    """
    if serializer is None or compression is None:
        task = registry.find(task_name)
        if task is not None:
            serializer = serializer or task.serializer
            compression = compression or task.compression
        defaults = _defaults or _read_defaults()
        serializer = serializer or defaults[0]
        compression = compression or defaults[1]
    return serializer, compression


#: TASKQ_TASK_SERIALIZER and TASKQ_COMPRESSION, read once (reset when settings change).
_defaults: tuple[str, str | None] | None = None


def default_serializer() -> str:
    """TASKQ_TASK_SERIALIZER (cached)."""
    return (_defaults or _read_defaults())[0]


def _read_defaults() -> tuple[str, str | None]:
    global _defaults
    _defaults = (taskq_settings.TASK_SERIALIZER, taskq_settings.COMPRESSION or None)
    return _defaults


@receiver(setting_changed)
def _forget_defaults(*, setting: str, **kwargs: Any) -> None:
    global _defaults
    if affects_taskq(setting):
        _defaults = None


def _unknown_setting_hint() -> str:
    return (
        "check the call's and the task's serializer=/compression= and TASKQ_TASK_SERIALIZER / "
        "TASKQ_COMPRESSION"
    )


# -- compression ----------------------------------------------------------------
class _Zstd(threading.local):
    """One zstd compressor and decompressor per thread (they are not thread-safe)."""

    def __init__(self) -> None:
        zstandard: Any = _module("zstd")
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd: _Zstd | None = None


def _zstd_contexts() -> _Zstd | None:
    """This thread's zstd contexts; None when zstandard cannot be imported (now)."""
    global _zstd
    if _module("zstd") is None:
        return None
    if _zstd is None:
        _zstd = _Zstd()
    return _zstd


def compress(data: bytes, compression: str, owner: str) -> bytes:
    """``data`` compressed; ImproperlyConfiguredTaskq when the library is missing."""
    if compression == "zlib":
        return zlib.compress(data, ZLIB_LEVEL)
    if compression == "zstd":
        contexts = _zstd_contexts()
        if contexts is None:
            raise ImproperlyConfiguredTaskq(f"{owner}: compression='zstd' {needs('zstd')}")
        out: bytes = contexts.compressor.compress(data)
        return out
    raise ImproperlyConfiguredTaskq(
        f"{owner}: compression {compression!r} is not one of {', '.join(COMPRESSIONS)}; "
        + _unknown_setting_hint()
    )


def decompress(data: bytes, compression: str, limit: int = MAX_INFLATED) -> bytes:
    """``data`` inflated; DecodeError when it is corrupt, too large, or cannot be read here."""
    if compression == "zlib":
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise DecodeError(f"zlib data is corrupt: {exc}") from None
        if len(out) > limit:
            raise DecodeError(f"zlib data inflates past {limit} bytes; refused")
        if not inflater.eof:
            raise DecodeError("zlib data is truncated")
        return out
    if compression == "zstd":
        contexts = _zstd_contexts()
        if contexts is None:
            raise DecodeError(f"it is compressed with zstd, which {needs('zstd')}")
        return _zstd_decompress(contexts, data, limit)
    raise DecodeError(f"unknown compression {compression!r}")  # pragma: no cover - callers check


def _zstd_decompress(contexts: _Zstd, data: bytes, limit: int) -> bytes:
    zstandard: Any = _module("zstd")
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"zstd data is corrupt: {exc}") from None
    if size > limit:
        raise DecodeError(f"zstd data inflates to {size} bytes, past {limit}; refused")
    try:
        if size >= 0:
            out: bytes = contexts.decompressor.decompress(data)
            return out
        # No size in the frame (not written by django_taskq): read it in bounded steps.
        parts: list[bytes] = []
        total = 0
        with contexts.decompressor.stream_reader(data) as reader:
            while chunk := reader.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise DecodeError(f"zstd data inflates past {limit} bytes; refused")
                parts.append(chunk)
        return b"".join(parts)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"zstd data is corrupt: {exc}") from None


# -- msgpack --------------------------------------------------------------------
def _msgpack() -> Any:
    module = _module("msgpack")
    if module is None:
        raise ModuleNotFoundError(needs("msgpack"))
    return module


def _ext_default(obj: Any) -> Any:
    """msgpack's ``default``: tagged values as extension types, subclasses as their base."""
    msgpack = _msgpack()
    if isinstance(obj, tuple):
        return msgpack.ExtType(8, _pack([*obj]))
    if isinstance(obj, dt.datetime):
        return msgpack.ExtType(1, _pack(obj.isoformat()))
    if isinstance(obj, dt.date):
        return msgpack.ExtType(2, _pack(obj.isoformat()))
    if isinstance(obj, dt.time):
        return msgpack.ExtType(3, _pack(obj.isoformat()))
    if isinstance(obj, dt.timedelta):
        return msgpack.ExtType(4, _pack(obj.total_seconds()))
    if isinstance(obj, Decimal):
        return msgpack.ExtType(5, _pack(str(obj)))
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(6, _pack(str(obj)))
    if isinstance(obj, set | frozenset):
        return msgpack.ExtType(7, _pack([*obj]))
    # strict_types (so tuples reach this hook) also sends subclasses here:
    # take them as the base type JSON would write them as.
    if isinstance(obj, bool):  # pragma: no cover - bool cannot be subclassed
        return bool(obj)
    if isinstance(obj, dict):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, bytearray | memoryview | bytes):
        return bytes(obj)
    to_dict = getattr(obj, "__taskq_json__", None)
    if to_dict is not None:
        return to_dict()
    raise TypeError(f"Object of type {type(obj).__name__} is not msgpack serializable")


def _pack(value: Any) -> bytes:
    out: bytes = _msgpack().packb(
        value, default=_ext_default, use_bin_type=True, strict_types=True, datetime=False
    )
    return out


def _ext_hook(code: int, data: bytes) -> Any:
    tag = EXT_CODES.get(code)
    if tag is None:
        raise DecodeError(f"unknown msgpack extension type {code}")
    value = _unpack(data)
    if tag == "tuple":
        if not isinstance(value, list):
            raise DecodeError(f"tagged value 'tuple' needs a list, not {type(value).__name__}")
        return tuple(value)
    return untag(tag, value)


def _unpack(data: bytes) -> Any:
    return _msgpack().unpackb(
        data, ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True
    )


def msgpack_dumps(value: Any) -> bytes:
    """Encode a value with the tagged msgpack codec."""
    return _pack(value)


def msgpack_loads(data: bytes) -> Any:
    """Decode what ``msgpack_dumps`` produced; DecodeError saying why it cannot."""
    try:
        return _unpack(data)
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises its own kinds, ValueError, TypeError, ...
        detail = str(exc) or type(exc).__name__
        raise DecodeError(f"msgpack data cannot be decoded: {detail}") from None


# -- bodies ---------------------------------------------------------------------
def encode_body(
    envelope: Envelope, data: dict[str, Any], serializer: str, compression: str | None
) -> str | bytes:
    """The body of ``envelope`` (its fields in ``data``) in any form but plain JSON's."""
    owner = envelope.task
    if compression == NO_COMPRESSION:
        compression = None
    if serializer == "json":
        text = envelope.encode_json(data)
        if compression is None:
            return text
        payload = text.encode("utf-8")
    elif serializer == "msgpack":
        if missing("msgpack"):
            raise ImproperlyConfiguredTaskq(f"{owner}: serializer='msgpack' {needs('msgpack')}")
        payload = _encode_msgpack(envelope, data)
    elif serializer == "pickle":
        payload = _encode_pickle(envelope, data)
    else:
        raise ImproperlyConfiguredTaskq(
            f"{owner}: serializer {serializer!r} is not one of {', '.join(SERIALIZERS)}; "
            + _unknown_setting_hint()
        )
    if compression is not None:
        # A wrong name or a missing library fails every call, not only the large ones.
        if compression not in COMPRESSIONS:
            raise ImproperlyConfiguredTaskq(
                f"{owner}: compression {compression!r} is not one of {', '.join(COMPRESSIONS)}; "
                + _unknown_setting_hint()
            )
        if missing(compression):
            raise ImproperlyConfiguredTaskq(
                f"{owner}: compression={compression!r} {needs(compression)}"
            )
        if len(payload) < int(taskq_settings.COMPRESSION_MIN_SIZE):
            compression = None
    if compression is None:
        if serializer == "json":
            return payload.decode("utf-8")
        if serializer == "pickle":
            return PICKLE_MARK + base64.b64encode(payload).decode("ascii")
        return b"msgpack:" + payload
    return f"{serializer}+{compression}:".encode("ascii") + compress(payload, compression, owner)


def _encode_msgpack(envelope: Envelope, data: dict[str, Any]) -> bytes:
    try:
        return _pack(data)
    except (TypeError, ValueError, OverflowError):
        check_encodable(envelope.task, envelope.args, envelope.kwargs, msgpack_dumps, "msgpack")
        for name in ("headers", "link", "link_error", "chord"):
            try:
                _pack(data[name])
            except (TypeError, ValueError, OverflowError) as exc:
                raise EncodeError(
                    f"{envelope.task}: option {name!r} cannot be sent: {exc}"
                ) from exc
        raise


def _encode_pickle(envelope: Envelope, data: dict[str, Any]) -> bytes:
    import pickle

    try:
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # PicklingError, TypeError, AttributeError (local objects)...
        raise EncodeError(f"{envelope.task}: the message cannot be pickled: {exc}") from exc


def header_of(raw: bytes) -> tuple[str, str | None] | None:
    """The (serializer, compression) a body's header names (``p:`` is pickle), else None."""
    if raw.startswith(b"p:"):
        return "pickle", None
    found = _HEADER.match(raw, 0, 40)
    if found is None:
        return None
    return found.group(1).decode("ascii"), (found.group(2) or b"").decode("ascii") or None


def decode_body(
    body: str | bytes, accept: list[str] | tuple[str, ...], limit: int = MAX_INFLATED
) -> Any:
    """The envelope dict of a body that is not plain JSON (or the JSON error it raises).

    DecodeError names what is wrong, or what to add to TASKQ_ACCEPT_CONTENT.
    """
    from django_taskq.messages import parse_json

    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if raw.startswith(b"p:"):
        return _loads_pickle(base64_payload=raw[2:], accept=accept)
    found = _HEADER.match(raw, 0, 40)
    if found is None:
        return parse_json(body)  # its error says why it is not JSON
    serializer = found.group(1).decode("ascii")
    compression = found.group(2).decode("ascii") if found.group(2) else None
    if serializer not in SERIALIZERS:
        raise DecodeError(
            f"message body starts with an unknown serializer {serializer!r} (this worker "
            f"knows {', '.join(SERIALIZERS)})"
        )
    if compression is not None and compression not in COMPRESSIONS:
        raise DecodeError(
            f"message body is compressed with an unknown compression {compression!r} (this "
            f"worker knows {', '.join(COMPRESSIONS)})"
        )
    _check_accepted(serializer, compression, accept)
    payload = raw[found.end() :]
    if compression is not None:
        try:
            payload = decompress(payload, compression, limit)
        except DecodeError as exc:
            raise DecodeError(f"message body: {exc}") from None
    if serializer == "json":
        return parse_json(payload)
    if serializer == "msgpack":
        try:
            return msgpack_loads(payload)
        except DecodeError as exc:
            raise DecodeError(f"message body: {exc}") from None
    return _loads_pickle(raw_payload=payload, accept=accept)


def _check_accepted(
    serializer: str, compression: str | None, accept: list[str] | tuple[str, ...]
) -> None:
    """DecodeError naming what to add to which setting (or install) for this worker to take it."""
    kinds = (
        (serializer, "pickled" if serializer == "pickle" else serializer),
        (compression, f"compressed with {compression}"),
    )
    for codec, what in kinds:
        if codec is None or codec == "json":
            continue
        if codec not in accept:
            reason = (
                f"message is {what} but this worker accepts only {list(accept)}; "
                f"add {codec!r} to TASKQ_ACCEPT_CONTENT to accept it"
            )
            if missing(codec):
                reason += f"; {codec} {needs(codec)} (not installed on this worker)"
            raise DecodeError(reason)
        if missing(codec):
            raise DecodeError(
                f"message is {what}, but this worker cannot read it: {codec} {needs(codec)}"
            )


def _loads_pickle(
    *,
    accept: list[str] | tuple[str, ...],
    base64_payload: bytes | None = None,
    raw_payload: bytes | None = None,
) -> Any:
    import pickle

    _check_accepted("pickle", None, accept)
    try:
        if base64_payload is not None:
            raw_payload = base64.b64decode(base64_payload)
        return pickle.loads(raw_payload or b"")
    except Exception as exc:
        raise DecodeError(f"pickled message body cannot be loaded: {exc}") from exc


# -- results --------------------------------------------------------------------
def compress_value(value: Any, compression: str) -> Any:
    """``value`` as a result record holds it: compressed when its JSON is large enough.

    The tagged form ``{"__taskq__": "zlib", "v": base64}`` is what
    ``messages.loads`` reads back as the value.
    """
    if compression == NO_COMPRESSION:
        return value
    text = dumps(value)
    if len(text) < int(taskq_settings.COMPRESSION_MIN_SIZE):
        return value
    packed = compress(text.encode("utf-8"), compression, "result")
    return {TAG: compression, "v": base64.b64encode(packed).decode("ascii")}


def inflate_value(compression: str, text: str) -> Any:
    """The value of a compressed result (the tagged form's ``"v"``); DecodeError if it cannot."""
    try:
        packed = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise DecodeError(f"compressed value is not base64: {exc}") from None
    return loads(decompress(packed, compression))
