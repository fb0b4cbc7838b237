"""Serializers and compressions (codecs.py): round trips, refusals, corrupt bodies, clear errors."""

from __future__ import annotations

import base64
import datetime as dt
import enum
import re
import sys
import uuid
import zlib
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import msgpack
import pytest
import redis
import zstandard
from django.test import override_settings

from django_taskq import codecs, shared_task, states
from django_taskq.broker import keys
from django_taskq.checks import check_settings
from django_taskq.exceptions import DecodeError, EncodeError, ImproperlyConfiguredTaskq
from django_taskq.messages import Envelope, dumps, loads
from django_taskq.monitor.display import describe
from django_taskq.trace import Outcome, result_record
from tests.testapp.tasks import add, echo, msgpack_types, zlib_echo, zstd_echo

EVERYTHING = list(codecs.CONTENT)

TAGGED = [
    dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 29, 2, 30, 1, 5),
    dt.date(2026, 1, 2),
    dt.time(3, 4, 5, 6),
    dt.timedelta(days=1, seconds=3.5),
    Decimal("1.10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"\x00\xffbytes",
    {1, 2, 3},
    (1, "two", (3.0, None)),
    {"nested": [dt.date(2020, 1, 1), {"d": Decimal("2"), "t": (dt.time(1),)}]},
    {7: "an int key", "s": frozenset({"a"})},
]


def _big(n: int = 400) -> list[dict[str, Any]]:
    """A compressible argument well above TASKQ_COMPRESSION_MIN_SIZE."""
    return [{"id": i, "name": f"customer {i}", "balance": i * 1.5} for i in range(n)]


# -- msgpack ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", TAGGED, ids=lambda v: type(v).__name__)
def test_msgpack_round_trips_every_tagged_type_as_the_same_type(value: Any) -> None:
    back = codecs.msgpack_loads(codecs.msgpack_dumps(value))
    assert back == value
    assert type(back) is type(value) or (type(value) is frozenset and type(back) is set)


def test_msgpack_envelope_keeps_tuples_where_json_turns_them_into_lists() -> None:
    env = Envelope(id="1", task="t", args=[(1, 2), {3}], kwargs={"when": dt.date(2020, 1, 1)})
    back = Envelope.decode(env.encode("msgpack"), ["json", "msgpack"])
    assert back == env and type(back.args[0]) is tuple
    assert Envelope.decode(env.encode("json")).args[0] == [1, 2]


def test_msgpack_takes_subclasses_as_json_writes_them() -> None:
    class Colour(enum.IntEnum):
        RED = 1

    class Name(str):
        pass

    value = {"c": Colour.RED, "n": Name("x"), "o": OrderedDict(a=1), "ba": bytearray(b"z")}
    back = codecs.msgpack_loads(codecs.msgpack_dumps(value))
    assert back == {"c": 1, "n": "x", "o": {"a": 1}, "ba": b"z"}
    assert type(back["c"]) is int and type(back["o"]) is dict


def test_msgpack_extension_data_is_the_tagged_forms_value() -> None:
    """What a reader outside Python relies on (docs/serialization.md)."""
    packed = codecs.msgpack_dumps([dt.date(2020, 1, 2), Decimal("1.5"), (1,)])
    raw = msgpack.unpackb(packed)
    assert [(e.code, msgpack.unpackb(e.data)) for e in raw] == [
        (2, "2020-01-02"),
        (5, "1.5"),
        (8, [1]),
    ]


def test_an_argument_msgpack_cannot_encode_fails_at_delay_naming_it() -> None:
    with pytest.raises(EncodeError, match=r"positional argument 0 of type list cannot be sent as"):
        msgpack_types.delay([2**70])
    with pytest.raises(EncodeError, match="positional argument 0 of type object"):
        msgpack_types.delay(object())


# -- bodies ----------------------------------------------------------------------------
def test_the_default_body_is_plain_json_text_as_before() -> None:
    env = Envelope(id="1", task="t", args=[_big()])
    body = env.encode()
    assert isinstance(body, str) and body.startswith('{"id":"1"')
    assert env.encode("json", "none") == body


@pytest.mark.parametrize("serializer", ["json", "msgpack", "pickle"])
@pytest.mark.parametrize("compression", ["zlib", "zstd"])
def test_compressed_bodies_round_trip_with_their_header(serializer: str, compression: str) -> None:
    env = Envelope(id="1", task="t", args=[_big(), dt.date(2020, 1, 1)])
    body = env.encode(serializer, compression)
    assert isinstance(body, bytes)
    header = f"{serializer}+{compression}:".encode()
    assert body.startswith(header)
    assert len(body) < len(env.encode()) / 3
    back = Envelope.decode(body, EVERYTHING)
    assert back.args == env.args
    # The bytes after the header are a plain zlib stream / zstd frame of the serialized envelope.
    payload = body[len(header) :]
    raw = zlib.decompress(payload) if compression == "zlib" else zstandard.decompress(payload)
    if serializer == "json":
        assert loads(raw) == loads(env.encode())


def test_small_bodies_are_not_compressed() -> None:
    env = Envelope(id="1", task="t", args=[1])
    assert isinstance(env.encode("json", "zlib"), str)
    assert env.encode("msgpack", "zstd").startswith(b"msgpack:")  # type: ignore[arg-type]
    assert env.encode("pickle", "zlib").startswith("p:")  # type: ignore[arg-type]
    with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
        assert env.encode("json", "zlib").startswith(b"json+zlib:")  # type: ignore[arg-type]


def test_a_legacy_pickled_body_still_decodes() -> None:
    import pickle

    data = {"id": "1", "task": "t", "args": [(1, 2)]}
    body = b"p:" + base64.b64encode(pickle.dumps(data))
    assert Envelope.decode(body, ["json", "pickle"]).args == [(1, 2)]


@pytest.mark.parametrize(
    ("body", "accept", "fragment"),
    [
        (b"msgpack:\x80", ["json"], "add 'msgpack' to TASKQ_ACCEPT_CONTENT"),
        (b"json+zlib:x", ["json"], "compressed with zlib but this worker accepts only ['json']"),
        (b"json+zstd:x", ["json", "zlib"], "add 'zstd' to TASKQ_ACCEPT_CONTENT"),
        (b"msgpack+zlib:x", ["json", "zlib"], "add 'msgpack' to TASKQ_ACCEPT_CONTENT"),
        (b"msgpack+zlib:x", ["json", "msgpack"], "add 'zlib' to TASKQ_ACCEPT_CONTENT"),
        (b"pickle+zlib:x", ["json", "zlib"], "pickled but this worker accepts only"),
    ],
)
def test_a_body_this_worker_does_not_accept_is_refused_naming_the_setting(
    body: bytes, accept: list[str], fragment: str
) -> None:
    with pytest.raises(DecodeError, match=re.escape(fragment)):
        Envelope.decode(body, accept)


def _zstd_without_size(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_content_size=False).compress(data)


GOOD = b'{"id":"1","task":"t"}'


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"json+zlib:" + zlib.compress(GOOD)[:-4], "zlib data is truncated"),
        (b"json+zlib:not zlib", "zlib data is corrupt"),
        (b"json+zstd:not zstd", "zstd data is corrupt"),
        (b"json+zstd:" + zstandard.compress(GOOD)[:-3], "zstd data is corrupt"),
        (b"json+zlib:" + zlib.compress(b"\xff\xfe"), "message body is not UTF-8"),
        (b"json+zlib:" + zlib.compress(b"[1]"), "must be a JSON object"),
        (b"msgpack:\xc1", "msgpack data cannot be decoded: FormatError"),
        (b"msgpack:\x92\x01", "msgpack data cannot be decoded"),
        (b"msgpack:" + msgpack.packb(msgpack.ExtType(99, b"")), "unknown msgpack extension"),
        (b"msgpack:" + msgpack.packb([msgpack.ExtType(5, msgpack.packb(3))]), "'decimal' needs"),
        (b"msgpack:" + msgpack.packb(msgpack.ExtType(8, msgpack.packb(3))), "'tuple' needs a"),
        (b"msgpack:" + msgpack.packb({"id": 1, "task": "t"}), "field 'id'"),
        (b"msgpack+zlib:" + zlib.compress(b"\x93\x01"), "msgpack data cannot be decoded"),
        (b"yaml:x", "unknown serializer 'yaml'"),
        (b"json+gzip:x", "unknown compression 'gzip'"),
        (b"hello", "message body is not valid JSON"),
    ],
)
def test_corrupt_bodies_raise_decode_error_saying_why(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(fragment)):
        Envelope.decode(body, EVERYTHING)


def test_a_zstd_frame_without_its_size_decodes_in_bounded_steps() -> None:
    body = b"json+zstd:" + _zstd_without_size(GOOD)
    assert Envelope.decode(body, EVERYTHING).task == "t"


def test_a_body_that_inflates_past_the_limit_is_refused() -> None:
    bomb = b"0" * 100_000
    with pytest.raises(DecodeError, match="zlib data inflates past 1000 bytes"):
        codecs.decompress(zlib.compress(bomb), "zlib", limit=1000)
    with pytest.raises(DecodeError, match="zstd data inflates to 100000 bytes, past 1000"):
        codecs.decompress(zstandard.compress(bomb), "zstd", limit=1000)
    with pytest.raises(DecodeError, match="zstd data inflates past 1000 bytes"):
        codecs.decompress(_zstd_without_size(bomb), "zstd", limit=1000)


# -- the options, and where they come from ------------------------------------------------
def test_choose_takes_the_call_then_the_task_then_the_settings() -> None:
    assert codecs.choose(add.name) == ("json", None)
    assert codecs.choose(zstd_echo.name) == ("msgpack", "zstd")
    assert codecs.choose(zstd_echo.name, "pickle", "zlib") == ("pickle", "zlib")
    assert codecs.choose("not.registered") == ("json", None)
    with override_settings(TASKQ_TASK_SERIALIZER="msgpack", TASKQ_COMPRESSION="zlib"):
        assert codecs.choose(add.name) == ("msgpack", "zlib")
        assert codecs.choose(zlib_echo.name, "json") == ("json", "zlib")
    assert codecs.choose(add.name) == ("json", None)


def test_wrong_names_fail_when_declared_or_called() -> None:
    with pytest.raises(ValueError, match=r"codec_bad: compression='gzip' is not a compression"):
        shared_task(name="codec_bad", compression="gzip")(lambda: None)
    with pytest.raises(ValueError, match=r"serializer='yaml' is not a serializer; use 'json'"):
        shared_task(name="codec_bad2", serializer="yaml")(lambda: None)
    with pytest.raises(ValueError, match=r"echo.apply_async\(\): compression='lz4'"):
        echo.apply_async((1,), compression="lz4")
    with (
        override_settings(TASKQ_COMPRESSION="gzip"),
        pytest.raises(ImproperlyConfiguredTaskq, match="TASKQ_COMPRESSION"),
    ):
        echo.delay(1)


@pytest.mark.parametrize(
    ("module", "options", "message"),
    [
        (
            "zstandard",
            {"compression": "zstd"},
            "compression='zstd' needs the zstandard package: "
            "pip install django-taskq-streams[zstd]",
        ),
        (
            "msgpack",
            {"serializer": "msgpack"},
            "serializer='msgpack' needs the msgpack package: "
            "pip install django-taskq-streams[msgpack]",
        ),
    ],
)
def test_a_missing_library_is_a_clear_error_at_the_caller_and_in_the_worker(
    monkeypatch: pytest.MonkeyPatch, module: str, options: dict[str, str], message: str
) -> None:
    body = Envelope(id="1", task="t", args=[_big()]).encode(
        options.get("serializer", "json"), options.get("compression")
    )
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ImproperlyConfiguredTaskq, match=re.escape(message)):
        echo.apply_async((1,), **options)  # small: a missing library fails every call
    with pytest.raises(DecodeError, match=re.escape(message.split(" ", 1)[1])):
        Envelope.decode(body, EVERYTHING)
    with pytest.raises(DecodeError, match=r"add '(zstd|msgpack)' to .*not installed on this"):
        Envelope.decode(body, ["json"])


# -- publishing ------------------------------------------------------------------------
def test_delay_sends_the_tasks_codec_and_events_keep_the_bodies_that_fit(
    broker: redis.Redis,
) -> None:
    zlib_echo.delay(_big())
    zstd_echo.delay(_big())
    zstd_echo.apply_async((1,), compression="none")  # small, and the call says no
    add.delay(1, 2)
    bodies = [f[b"b"] for _, f in broker.xrange(keys.stream("default", 5))]
    headers = [b.split(b":", 1)[0] for b in bodies[:3]]
    assert headers == [b"json+zlib", b"msgpack+zstd", b"msgpack"]
    assert bodies[3].startswith(b"{")
    sent = [e for _, f in broker.xrange(keys.events("default")) for e in loads(f[b"e"])]
    # Each body is kept as text (bytes in base64) when that fits TASKQ_HISTORY_BODY_LIMIT.
    kept = ["base64:" + base64.b64encode(b).decode() for b in bodies[:3]] + [bodies[3].decode()]
    assert [e.get("body") for e in sent] == kept


def test_group_members_are_sent_with_their_tasks_codec(broker: redis.Redis) -> None:
    from django_taskq import group

    group(zlib_echo.s(_big()), add.s(1, 1)).delay()
    bodies = [f[b"b"] for _, f in broker.xrange(keys.stream("default", 5))]
    kinds = sorted(b"{" if b.startswith(b"{") else b.split(b":", 1)[0] for b in bodies)
    assert kinds == [b"json+zlib", b"{"]


# -- results ---------------------------------------------------------------------------
def test_a_compressed_result_keeps_its_record_json_with_the_status_first() -> None:
    env = Envelope(id="r1", task="t")
    value = _big()
    record = result_record(env, Outcome(states.SUCCESS, value=value), "w", "zlib")
    assert record.startswith('{"status":"SUCCESS","result":{"__taskq__":"zlib","v":"')
    assert len(record) < len(dumps(value)) / 3
    assert loads(record)["result"] == value
    small = result_record(env, Outcome(states.SUCCESS, value=[1, 2]), "w", "zstd")
    assert loads(small)["result"] == [1, 2] and "__taskq__" not in small
    failed = result_record(
        env, Outcome(states.FAILURE, exception=ValueError("x" * 2000)), "w", "zstd"
    )
    assert '"exc_type":"ValueError"' in failed


@pytest.mark.parametrize("compression", ["zlib", "zstd"])
def test_the_compressed_result_form_is_base64_of_the_compressed_json(compression: str) -> None:
    """What a reader outside Python relies on (docs/serialization.md)."""
    tagged = codecs.compress_value({"k": "v" * 2000}, compression)
    assert set(tagged) == {"__taskq__", "v"} and tagged["__taskq__"] == compression
    packed = base64.b64decode(tagged["v"])
    text = zlib.decompress(packed) if compression == "zlib" else zstandard.decompress(packed)
    assert text == b'{"k":"' + b"v" * 2000 + b'"}'


def test_a_result_that_cannot_be_inflated_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = dumps({"status": "SUCCESS", "result": codecs.compress_value(_big(), "zstd")})
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(DecodeError, match=r"zstd, which needs the zstandard package"):
        loads(record)


# -- system checks ---------------------------------------------------------------------
def _ids(**settings: Any) -> dict[str, list[str]]:
    with override_settings(**settings):
        found: dict[str, list[str]] = {}
        for message in check_settings():
            found.setdefault(message.id or "", []).append(message.msg)
        return found


def test_checks_name_unknown_codecs_missing_libraries_and_unaccepted_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not {"taskq.E003", "taskq.E006", "taskq.W007"} & set(
        _ids(TASKQ_ACCEPT_CONTENT=["json", "msgpack", "zstd"], TASKQ_COMPRESSION="zstd")
    )
    found = _ids(TASKQ_ACCEPT_CONTENT=["json", "yaml"], TASKQ_RESULT_COMPRESSION="gzip")
    assert any("unknown content type(s) ['yaml']" in m for m in found["taskq.E003"])
    assert any(
        "TASKQ_RESULT_COMPRESSION: result_compression='gzip'" in m for m in found["taskq.E003"]
    )
    found = _ids(TASKQ_TASK_SERIALIZER="msgpack", TASKQ_COMPRESSION="zlib")
    assert len(found["taskq.W007"]) == 2
    monkeypatch.setitem(sys.modules, "zstandard", None)
    found = _ids(TASKQ_ACCEPT_CONTENT=["json", "zstd"])
    assert found["taskq.E006"] == [
        "TASKQ_ACCEPT_CONTENT names 'zstd', which needs the zstandard package: "
        "pip install django-taskq-streams[zstd]."
    ]


# -- showing a message -----------------------------------------------------------------
def test_live_views_show_msgpack_and_compressed_bodies_but_never_unpickle() -> None:
    env = Envelope(id="m1", task="tests.x", args=[_big(3), dt.date(2020, 1, 1)])
    for serializer, compression in (("msgpack", None), ("json", "zlib"), ("msgpack", "zstd")):
        with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
            shown = describe(b"m1", env.encode(serializer, compression))
        assert shown.task == "tests.x" and "customer 0" in shown.args, (serializer, shown)
    pickled = describe(b"m1", env.encode("pickle", "zlib"))
    assert pickled.task == "(pickled)"
    broken = describe(b"m1", b"json+zstd:broken")
    assert "zstd data is corrupt" in broken.args


# -- what the worker sends on: retries and requeues ---------------------------------------
def _held_delivery(broker: redis.Redis) -> Any:
    """A real pending entry of the default queue (a consumer group has read it)."""
    from django_taskq.worker import streams as ops

    stream = keys.stream("default", 5)
    ops.ensure_groups(broker, [stream])
    broker.xadd(stream, {"b": "x"})
    [(_, [(entry_id, _fields)])] = broker.xreadgroup(keys.GROUP, "c1", {stream: ">"}, count=1)
    return ops.Delivery(stream, entry_id.decode(), {})


def test_a_retry_and_a_requeue_are_sent_with_their_tasks_codec_and_the_settings(
    broker: redis.Redis,
) -> None:
    """Before: a retry was always JSON, a requeue too, whatever the task or settings said."""
    from django_taskq.worker.settle import Settler

    retry = zstd_echo.build_envelope((_big(),), retries=1)
    settler = Settler("codecs@test")
    settler.finish(
        _held_delivery(broker),
        zstd_echo.build_envelope((_big(),)),
        Outcome(states.RETRY),
        republish=retry,
        once="r1",
    )
    settler.pass_on(_held_delivery(broker), zlib_echo.build_envelope((_big(),)), "r2")
    with override_settings(TASKQ_TASK_SERIALIZER="msgpack"):
        settler.pass_on(_held_delivery(broker), add.build_envelope((1, 2)), "r3")
    settler.flush()  # acks the three held entries, publishes the three new ones
    bodies = [fields[b"b"] for _, fields in broker.xrange(keys.stream("default", 5))]
    assert [b.split(b":", 1)[0] for b in bodies] == [b"msgpack+zstd", b"json+zlib", b"msgpack"]


class Opaque:
    """Something only pickle can send (importable, so a worker could unpickle it)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque)


def test_a_pickle_task_takes_an_argument_json_cannot_encode(broker: redis.Redis) -> None:
    """Before: build_envelope checked every argument as JSON, whatever the serializer."""
    pickled = shared_task(name="tests.codecs.pickled", serializer="pickle")(lambda value: None)
    pickled.delay(Opaque())
    [(_, fields)] = broker.xrange(keys.stream("default", 5))
    assert fields[b"b"].startswith(b"p:")
    assert Envelope.decode(fields[b"b"], ["json", "pickle"]).args == [Opaque()]


def test_a_signature_and_send_task_take_the_codec_options(broker: redis.Redis) -> None:
    from django_taskq import send_task

    zlib_echo.s(_big()).set(compression="zstd").delay()
    send_task(add.name, args=(1, 2), serializer="msgpack")
    bodies = [f[b"b"] for _, f in broker.xrange(keys.stream("default", 5))]
    assert [b.split(b":", 1)[0] for b in bodies] == [b"json+zstd", b"msgpack"]
