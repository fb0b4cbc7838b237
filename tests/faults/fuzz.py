"""Malformed stream entries, written straight into a queue's stream with XADD.

A producer of django_taskq never writes these, but a stream is open to any
Redis client: another program, an old or newer version, a bug, an operator
with redis-cli. Whatever arrives, a worker must neither die nor run a task
body it cannot trust; it dead-letters the entry with a reason and goes on.

An entry has the fields ``i`` (task id), ``b`` (the body: the JSON envelope
of django_taskq/messages.py) and ``dc`` (delivery count). Every *kind*
below breaks one thing: the entry's fields (``dc`` not an integer, ``i`` not
UTF-8, a field missing or extra, ``i`` not the body's id), the body (not
UTF-8, not JSON, not an object, 100,000 levels deep, pickled, 5 MB,
empty; or claiming a codec of codecs.py and corrupt, unknown, wrong inside or
pickled and compressed), one envelope field (every field, with the wrong type or an
impossible value), or a tagged value (``{"__taskq__": ...}``) with the
wrong payload. The rest of each entry is a correct envelope of
``tests.faults.tasks.fault_fast``, which records every execution, so a
worker that runs a bad entry is caught by the recorder.

Expected outcome: dead-lettered with a reason (``DEAD``) for every kind but
one: a well-formed message whose ``expires`` has passed is not malformed;
docs/calling.md says it ends ``REVOKED`` without running (``REVOKED``).

``strict_problem()`` states, as code, what a well-formed entry is; the
self-test (test_fuzz.py) checks that it finds a problem in every bad entry
and none in what ``delay()`` really writes. ``match_dead_letters()`` pairs
dead letters with the entries they came from by the unique id each entry
carries in ``i`` and/or its body.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import pickle
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django_taskq.messages import PICKLE_MARK, TAG, Envelope

#: The task every bad entry names (unless the kind is about the name).
FAULT_TASK = "tests.faults.tasks.fault_fast"
DEAD, REVOKED = "dead", "revoked"
HUGE_BYTES = 5 * 1024 * 1024
DEEP = 100_000
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class BadEntry:
    kind: str
    fields: dict[bytes, bytes]  # exactly what XADD writes
    token: str  # a unique id in its ``i`` and/or body: finds its dead letter
    ids: tuple[str, ...]  # every task id it names (the recorder must show none)
    expect: str = DEAD


@dataclass
class _Ctx:
    rng: random.Random
    made: Counter[str] = field(default_factory=Counter)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[_Ctx], BadEntry]
    expect: str = DEAD


KINDS: dict[str, Kind] = {}


def _dumps(value: Any) -> bytes:
    """JSON as Python writes it, NaN and Infinity included (json.dumps allows them)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


def envelope_dict(task_id: str, task: str = FAULT_TASK) -> dict[str, Any]:
    """A correct envelope, as the producer encodes it, as a dict to break."""
    data: dict[str, Any] = json.loads(Envelope(id=task_id, task=task, args=[0]).encode())
    return data


def _entry(i: bytes | None, b: bytes | None, dc: bytes | None = b"0") -> dict[bytes, bytes]:
    fields = {}
    if i is not None:
        fields[b"i"] = i
    if b is not None:
        fields[b"b"] = b
    if dc is not None:
        fields[b"dc"] = dc
    return fields


Maker = Callable[[_Ctx], BadEntry]


def _register(name: str, expect: str = DEAD) -> Callable[[Maker], Maker]:
    def add(make: Maker) -> Maker:
        KINDS[name] = Kind(name, make, expect)
        return make

    return add


def _body_kind(
    name: str, mutate: Callable[[_Ctx, dict[str, Any]], None], expect: str = DEAD
) -> None:
    """A kind whose entry is right but whose envelope ``mutate`` breaks."""

    def make(ctx: _Ctx) -> BadEntry:
        task_id = ctx.new_id()
        data = envelope_dict(task_id)
        mutate(ctx, data)
        return BadEntry(name, _entry(task_id.encode(), _dumps(data)), task_id, (task_id,), expect)

    KINDS[name] = Kind(name, make, expect)


def _field_kind(name: str, key: str, values: list[Any]) -> None:
    """A kind that sets envelope field ``key`` to one of ``values``."""

    def mutate(ctx: _Ctx, data: dict[str, Any]) -> None:
        data[key] = ctx.rng.choice(values)

    _body_kind(name, mutate)


def _arg_kind(name: str, values: list[Any]) -> None:
    """A kind whose one positional argument is a broken tagged value."""

    def mutate(ctx: _Ctx, data: dict[str, Any]) -> None:
        data["args"] = [ctx.rng.choice(values)]

    _body_kind(name, mutate)


# -- the entry's own fields -------------------------------------------------------------------
def _dc_kind(name: str, values: list[bytes]) -> None:
    def make(ctx: _Ctx) -> BadEntry:
        task_id = ctx.new_id()
        body = _dumps(envelope_dict(task_id))
        return BadEntry(
            name, _entry(task_id.encode(), body, ctx.rng.choice(values)), task_id, (task_id,)
        )

    KINDS[name] = Kind(name, make)


_dc_kind("dc_not_integer", [b"x", b"1.5", b"", b" 1", b"0x1", b"1e3"])
_dc_kind("dc_huge", [b"18446744073709551616", b"9" * 40])
_dc_kind("dc_negative", [b"-1", b"-9999"])


@_register("i_not_utf8")
def _i_not_utf8(ctx: _Ctx) -> BadEntry:
    task_id = ctx.new_id()
    raw = ctx.rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"]) + task_id.encode()
    return BadEntry("i_not_utf8", _entry(raw, _dumps(envelope_dict(task_id))), task_id, (task_id,))


@_register("missing_i")
def _missing_i(ctx: _Ctx) -> BadEntry:
    task_id = ctx.new_id()
    return BadEntry("missing_i", _entry(None, _dumps(envelope_dict(task_id))), task_id, (task_id,))


@_register("missing_b")
def _missing_b(ctx: _Ctx) -> BadEntry:
    task_id = ctx.new_id()
    return BadEntry("missing_b", _entry(task_id.encode(), None), task_id, (task_id,))


@_register("missing_dc")
def _missing_dc(ctx: _Ctx) -> BadEntry:
    task_id = ctx.new_id()
    fields = _entry(task_id.encode(), _dumps(envelope_dict(task_id)), None)
    return BadEntry("missing_dc", fields, task_id, (task_id,))


@_register("extra_field")
def _extra_field(ctx: _Ctx) -> BadEntry:
    task_id = ctx.new_id()
    fields = _entry(task_id.encode(), _dumps(envelope_dict(task_id)))
    fields[ctx.rng.choice([b"x", b"stream", b"reason", b"I"])] = b"1"
    return BadEntry("extra_field", fields, task_id, (task_id,))


@_register("i_mismatch")
def _i_mismatch(ctx: _Ctx) -> BadEntry:
    task_id, other = ctx.new_id(), ctx.new_id()
    fields = _entry(other.encode(), _dumps(envelope_dict(task_id)))
    return BadEntry("i_mismatch", fields, task_id, (task_id, other))


# -- the body as a whole ------------------------------------------------------------------
def _raw_body_kind(name: str, body: Callable[[_Ctx, str], bytes]) -> None:
    def make(ctx: _Ctx) -> BadEntry:
        task_id = ctx.new_id()
        return BadEntry(name, _entry(task_id.encode(), body(ctx, task_id)), task_id, (task_id,))

    KINDS[name] = Kind(name, make)


def _not_utf8(ctx: _Ctx, task_id: str) -> bytes:
    head = _dumps(envelope_dict(task_id))[:-1]  # drop the closing brace
    return head + b',"headers":{"x":"\xff\xfe"}}'


def _invalid_json(ctx: _Ctx, task_id: str) -> bytes:
    return ctx.rng.choice(
        [b"{not json", _dumps(envelope_dict(task_id))[:-1], b"\x00", b"{'id': 1}", b"[1,]"]
    )


def _not_object(ctx: _Ctx, task_id: str) -> bytes:
    return ctx.rng.choice(
        [_dumps([task_id, FAULT_TASK]), _dumps(task_id), b"42", b"null", b"true", b"[]"]
    )


def _deep(ctx: _Ctx, task_id: str) -> bytes:
    head = _dumps(envelope_dict(task_id))[:-1]
    return head + b',"kwargs":{"n":' + b"[" * DEEP + b"]" * DEEP + b"}}"


class _Tripwire:
    """Pickled into a body: if a worker ever unpickles it, the recorder shows ``unpickled``."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id

    def __reduce__(self) -> tuple[Any, ...]:
        from tests.faults.recorder import record

        return (record, (self.task_id, "unpickled"))


def _pickled(ctx: _Ctx, task_id: str) -> bytes:
    data = envelope_dict(task_id)
    data["args"] = [_Tripwire(task_id)]
    return PICKLE_MARK.encode() + base64.b64encode(pickle.dumps(data))


def _huge(ctx: _Ctx, task_id: str) -> bytes:
    head = _dumps(envelope_dict(task_id))[:-1] + b',"headers":{"pad":"'
    return head + b"x" * (HUGE_BYTES - len(head))  # never closed: 5 MB that is not JSON


_raw_body_kind("body_not_utf8", _not_utf8)
_raw_body_kind("body_invalid_json", _invalid_json)
_raw_body_kind("body_not_object", _not_object)
_raw_body_kind("body_deep_nesting", _deep)
_raw_body_kind("body_pickled", _pickled)
_raw_body_kind("body_huge_truncated", _huge)
_raw_body_kind("body_empty", lambda ctx, task_id: b"")
HUGE_KIND = "body_huge_truncated"


# -- bodies that claim a codec (codecs.py) --------------------------------------------------
#: What the fuzzed worker decodes (test_fuzzed_entries.py), so corrupt bytes reach each decoder.
WORKER_ACCEPTS = "json,msgpack,zlib,zstd"


def _codec_corrupt(ctx: _Ctx, task_id: str) -> bytes:
    import zlib

    import msgpack
    import zstandard

    good = _dumps(envelope_dict(task_id))
    packed = msgpack.packb(envelope_dict(task_id))
    return ctx.rng.choice(
        [
            b"json+zlib:" + b"not zlib at all",
            b"json+zlib:" + zlib.compress(good)[:-5],
            b"json+zlib:" + zlib.compress(good[:-1]),  # inflates to JSON that is cut short
            b"json+zstd:" + b"\x28\xb5\x2f\xfd garbage",
            b"json+zstd:" + zstandard.compress(good)[:-4],
            b"msgpack:" + b"\xc1",
            b"msgpack:" + packed[:-3],
            b"msgpack:" + packed + b"trailing",
            b"msgpack:" + msgpack.packb([msgpack.ExtType(42, b"?"), task_id]),
            b"msgpack+zlib:" + zlib.compress(b"\xc1\xc1"),
            b"msgpack+zstd:" + zstandard.compress(msgpack.packb(task_id)),
        ]
    )


def _codec_unknown(ctx: _Ctx, task_id: str) -> bytes:
    good = _dumps(envelope_dict(task_id))
    return ctx.rng.choice([b"yaml:" + good, b"json+gzip:" + good, b"bson+zlib:" + good])


def _msgpack_bad_field(ctx: _Ctx, task_id: str) -> bytes:
    import msgpack

    data = envelope_dict(task_id)
    data[ctx.rng.choice(["priority", "retries", "args"])] = ctx.rng.choice([-1, "x", {"a": 1}])
    return b"msgpack:" + msgpack.packb(data)


def _pickle_compressed(ctx: _Ctx, task_id: str) -> bytes:
    import zlib

    data = envelope_dict(task_id)
    data["args"] = [_Tripwire(task_id)]
    return b"pickle+zlib:" + zlib.compress(pickle.dumps(data))


_raw_body_kind("body_codec_corrupt", _codec_corrupt)
_raw_body_kind("body_codec_unknown", _codec_unknown)
_raw_body_kind("body_msgpack_bad_field", _msgpack_bad_field)
_raw_body_kind("body_pickle_compressed", _pickle_compressed)
_CODEC_HEADER = re.compile(rb"[a-z]{1,16}(\+[a-z0-9]{1,16})?:")


# -- one envelope field each ------------------------------------------------------------------
def _drop(key: str) -> Callable[[_Ctx, dict[str, Any]], None]:
    def mutate(ctx: _Ctx, data: dict[str, Any]) -> None:
        del data[key]

    return mutate


NAN, INF = math.nan, math.inf
_body_kind("body_missing_id", _drop("id"))
_body_kind("body_missing_task", _drop("task"))
_field_kind("id_not_str", "id", [1, None, ["x"], {"id": 1}])
# Text no UTF-8 encoder or database takes (a lone surrogate, JSON "\ud800") or
# that PostgreSQL refuses (NUL): the worker's counters, events and dead
# letter, the recorder and the admin pages all carry these names on.
_field_kind("id_odd_text", "id", ["x\ud800", "x\x00", "\udcff"])
_field_kind("task_odd_text", "task", ["t\ud800", "t\x00", "\udcff"])
_field_kind("task_not_str", "task", [1, None, [FAULT_TASK]])
_field_kind("unknown_task", "task", ["tests.faults.tasks.no_such_task", "os.system", ""])
_field_kind("args_not_list", "args", [{"a": 1}, "abc", 7, None])
_field_kind("kwargs_not_dict", "kwargs", [[1], "x", 3, None])
_field_kind("kwargs_tagged_set", "kwargs", [{TAG: "set", "v": ["n"]}])
_field_kind("queue_not_str", "queue", [5, None, ["default"]])
_field_kind("priority_out_of_range", "priority", [10, -1, 99, 2**40])
_field_kind("priority_not_int", "priority", ["5", 5.5, None, True])
_field_kind("retries_negative", "retries", [-1, -100])
_field_kind("retries_not_int", "retries", ["0", 1.5, None, False])
_field_kind("eta_str", "eta", ["tomorrow", "2030-01-01T00:00:00"])
_field_kind("eta_nan", "eta", [NAN])
_field_kind("eta_inf", "eta", [INF, -INF])
_field_kind("expires_str", "expires", ["never", "2030-01-01T00:00:00"])
_field_kind("expires_nan", "expires", [NAN])
_field_kind("expires_inf", "expires", [INF, -INF])
_body_kind(
    "expires_past",
    lambda ctx, data: data.update(expires=time.time() - ctx.rng.uniform(60, 86_400)),
    expect=REVOKED,
)
for _limit in ("time_limit", "soft_time_limit"):
    _field_kind(f"{_limit}_str", _limit, ["10", "soon"])
    _field_kind(f"{_limit}_negative", _limit, [-1, -0.5])
    _field_kind(f"{_limit}_zero", _limit, [0, 0.0])
    _field_kind(f"{_limit}_nan", _limit, [NAN, INF])
_field_kind("headers_not_dict", "headers", [[1], "h", 3])
for _link in ("link", "link_error"):
    _field_kind(f"{_link}_not_list", _link, [{"task": FAULT_TASK}, "x", 1])
    _field_kind(f"{_link}_items_not_dicts", _link, [[1], ["x"], [None], [[FAULT_TASK]]])


def _chord(ctx: _Ctx, data: dict[str, Any]) -> dict[str, Any]:
    chord_id = ctx.new_id()
    data.update(group_id=chord_id, group_index=0)
    membership = {
        "id": chord_id,
        "size": 1,
        "body": {"task": FAULT_TASK, "args": [], "kwargs": {}, "options": {}},
    }
    data["chord"] = membership
    return membership


def _chord_without(key: str) -> Callable[[_Ctx, dict[str, Any]], None]:
    def mutate(ctx: _Ctx, data: dict[str, Any]) -> None:
        del _chord(ctx, data)[key]

    return mutate


def _chord_bad_size(ctx: _Ctx, data: dict[str, Any]) -> None:
    _chord(ctx, data)["size"] = ctx.rng.choice(["1", 0, -1, None])


def _chord_bad_body(ctx: _Ctx, data: dict[str, Any]) -> None:
    _chord(ctx, data)["body"] = ctx.rng.choice(["x", [FAULT_TASK], 1, {"args": []}])


_field_kind("chord_wrong_type", "chord", ["c", [1], 5, True])
_body_kind("chord_missing_id", _chord_without("id"))
_body_kind("chord_missing_size", _chord_without("size"))
_body_kind("chord_missing_body", _chord_without("body"))
_body_kind("chord_bad_size", _chord_bad_size)
_body_kind("chord_bad_body", _chord_bad_body)
_field_kind("group_index_not_int", "group_index", ["0", 1.5, [0]])
_field_kind("ignore_result_not_bool", "ignore_result", ["false", "yes", 0, None])
_field_kind("root_id_not_str", "root_id", [1, ["x"], {"id": 1}])
_field_kind("parent_id_not_str", "parent_id", [1, ["x"]])
_field_kind("group_id_not_str", "group_id", [1, ["x"]])
_field_kind("sent_at_not_number", "sent_at", ["now", None, [1]])

# -- tagged values with the wrong payload -------------------------------------------------------
_arg_kind("tagged_bytes_not_str", [{TAG: "bytes", "v": 1}, {TAG: "bytes", "v": [1]}])
_arg_kind("tagged_bytes_bad_base64", [{TAG: "bytes", "v": "abc"}, {TAG: "bytes", "v": "%%%%"}])
_arg_kind("tagged_datetime_int", [{TAG: "datetime", "v": 1}, {TAG: "datetime", "v": "noon"}])
_arg_kind("tagged_date_bad", [{TAG: "date", "v": 20240101}, {TAG: "date", "v": "2024-13-45"}])
_arg_kind("tagged_time_bad", [{TAG: "time", "v": 12}, {TAG: "time", "v": "25:99"}])
_arg_kind("tagged_uuid_int", [{TAG: "uuid", "v": 1}, {TAG: "uuid", "v": "not-a-uuid"}])
_arg_kind("tagged_decimal_int", [{TAG: "decimal", "v": 1}])  # the encoder always writes a str
_arg_kind("tagged_decimal_garbage", [{TAG: "decimal", "v": "abc"}, {TAG: "decimal", "v": [1]}])
_arg_kind("tagged_timedelta_bad", [{TAG: "timedelta", "v": "x"}, {TAG: "timedelta", "v": NAN}])
_arg_kind("tagged_missing_v", [{TAG: "datetime"}, {TAG: "bytes"}, {TAG: "set"}])
_arg_kind("tagged_set_unhashable", [{TAG: "set", "v": [[1]]}, {TAG: "set", "v": [{"a": 1}]}])
_arg_kind("tagged_set_not_list", [{TAG: "set", "v": 1}, {TAG: "set", "v": "abc"}])
_arg_kind("tagged_unknown", [{TAG: "frobnicate", "v": 1}, {TAG: None, "v": 1}, {TAG: 1, "v": 1}])


# -- generating, checking, matching ----------------------------------------------------------------
def generate(count: int, *, seed: int = 0, huge_cap: int = 3) -> list[BadEntry]:
    """``count`` bad entries, every kind in turn (5 MB bodies at most ``huge_cap``), shuffled."""
    ctx = _Ctx(random.Random(seed))
    names = list(KINDS)
    out: list[BadEntry] = []
    turn = 0
    while len(out) < count:
        name = names[turn % len(names)]
        turn += 1
        if name == HUGE_KIND and ctx.made[name] >= huge_cap:
            continue
        ctx.made[name] += 1
        out.append(KINDS[name].make(ctx))
    ctx.rng.shuffle(out)
    return out


class _Bad(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _Bad(f"{name} is not JSON")


def _check_tag(obj: dict[str, Any]) -> Any:
    if TAG not in obj:
        return obj
    tag, rest = obj[TAG], set(obj) - {TAG}
    if rest != {"v"}:
        raise _Bad(f"tagged value {tag!r} must have exactly one field 'v'")
    value = obj["v"]
    checks: dict[str, Callable[[Any], Any]] = {
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "time": dt.time.fromisoformat,
        "decimal": Decimal,
        "uuid": uuid.UUID,
        "bytes": lambda v: base64.b64decode(v, validate=True),
    }
    if tag in checks:
        if not isinstance(value, str):
            raise _Bad(f"tagged {tag} must be a string, not {type(value).__name__}")
        try:
            checks[tag](value)
        except (ValueError, InvalidOperation) as exc:
            raise _Bad(f"tagged {tag} {value!r}: {exc}") from None
    elif tag == "timedelta":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Bad("tagged timedelta must be a number")
    elif tag == "set":
        if not isinstance(value, list) or any(isinstance(v, list | dict) for v in value):
            raise _Bad("tagged set must be a list of hashable values")
    else:
        raise _Bad(f"unknown tag {tag!r}")
    return None  # the decoded value does not matter here


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _envelope_problem(data: Any, entry_id: str, known_tasks: set[str], now: float) -> str | None:
    if not isinstance(data, dict):
        return f"body is a {type(data).__name__}, not an object"
    for key in ("id", "task"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"{key} missing or not a non-empty string"
    if data["id"] != entry_id:
        return "i is not the body's id"
    if data["task"] not in known_tasks:
        return f"unknown task {data['task']!r}"
    optional_str = ("root_id", "parent_id", "group_id")
    checks: list[tuple[str, Callable[[Any], bool]]] = [
        ("args", lambda v: isinstance(v, list)),
        ("kwargs", lambda v: isinstance(v, dict)),
        ("queue", lambda v: isinstance(v, str) and bool(v)),
        ("priority", lambda v: _is_int(v) and 0 <= v <= 9),
        ("retries", lambda v: _is_int(v) and v >= 0),
        ("eta", lambda v: v is None or _is_number(v)),
        ("expires", lambda v: v is None or _is_number(v)),
        ("headers", lambda v: isinstance(v, dict)),
        ("group_index", lambda v: v is None or (_is_int(v) and v >= 0)),
        ("ignore_result", lambda v: isinstance(v, bool)),
        ("time_limit", lambda v: v is None or (_is_number(v) and v > 0)),
        ("soft_time_limit", lambda v: v is None or (_is_number(v) and v > 0)),
        ("link", lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v)),
        ("link_error", lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v)),
        ("chord", _chord_ok),
        ("sent_at", _is_number),
        *((key, lambda v: v is None or isinstance(v, str)) for key in optional_str),
    ]
    for key, ok in checks:
        if key in data and not ok(data[key]):
            return f"{key} has a wrong type or value: {data[key]!r}"[:200]
    if data.get("expires") is not None and data["expires"] < now:
        return "expired"
    return None


def _chord_ok(value: Any) -> bool:
    if value is None:
        return True
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and _is_int(value.get("size"))
        and value["size"] > 0
        and isinstance(value.get("body"), dict)
        and isinstance(value["body"].get("task"), str)
    )


def strict_problem(
    fields: dict[bytes, bytes], known_tasks: Iterable[str] = (FAULT_TASK,), now: float | None = None
) -> str | None:
    """What is wrong with a stream entry, or None if a worker may run it."""
    if set(fields) != {b"i", b"b", b"dc"}:
        return f"fields are {sorted(fields)}, not i, b, dc"
    if not re.fullmatch(rb"[0-9]{1,15}", fields[b"dc"]):
        return f"dc {fields[b'dc']!r} is not a small non-negative integer"
    if _CODEC_HEADER.match(fields[b"b"]):
        # Not one of these bodies is right: each is corrupt, unknown, wrong inside or pickled.
        return "a body with a codec header, corrupt, unknown, wrong inside or pickled"
    try:
        entry_id = fields[b"i"].decode()
        body = fields[b"b"].decode()
    except UnicodeDecodeError as exc:
        return f"not UTF-8: {exc}"
    if body.startswith(PICKLE_MARK):
        return "pickled body on a JSON-only worker"
    try:
        data = json.loads(body, object_hook=_check_tag, parse_constant=_reject_constant)
    except _Bad as exc:
        return str(exc)
    except RecursionError:
        return "nested too deep"
    except ValueError as exc:
        return f"not JSON: {exc}"
    return _envelope_problem(data, entry_id, set(known_tasks), time.time() if now is None else now)


def match_dead_letters(
    entries: list[BadEntry], rows: list[dict[str, str]]
) -> tuple[dict[str, list[dict[str, str]]], list[dict[str, str]]]:
    """Pair dead letters with their entries: ({token: [rows]}, rows matching no entry).

    A dead letter is found by any id of the entry in its ``i`` or ``b``
    field (the fields as control.dead_letters() gives them).
    """
    by_id = {task_id: entry.token for entry in entries for task_id in entry.ids}
    matched: dict[str, list[dict[str, str]]] = {entry.token: [] for entry in entries}
    unmatched = []
    for row in rows:
        found = {
            by_id[u]
            for text in (row.get("i", ""), row.get("b", "")[:4096])
            for u in UUID_RE.findall(text)
            if u in by_id
        }
        if len(found) == 1:
            matched[found.pop()].append(row)
        else:
            unmatched.append(row)
    return matched, unmatched
