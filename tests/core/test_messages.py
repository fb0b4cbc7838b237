"""The JSON codec and the envelope: round trips, and clear errors at the caller."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest

from django_taskq.exceptions import DecodeError, EncodeError
from django_taskq.messages import Envelope, dumps, loads
from tests.testapp.tasks import add, echo


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 2, 30),
        dt.date(2026, 1, 2),
        dt.time(3, 4, 5),
        dt.timedelta(days=1, seconds=3.5),
        Decimal("1.10"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        b"\x00\xffbytes",
        {1, 2, 3},
        {"nested": [dt.date(2020, 1, 1), {"d": Decimal("2")}]},
    ],
)
def test_tagged_values_round_trip_with_their_type(value: object) -> None:
    back = loads(dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_unencodable_argument_fails_at_delay_naming_it() -> None:
    with pytest.raises(EncodeError) as info:
        echo.delay(object())
    message = str(info.value)
    assert "tests.testapp.tasks.echo" in message
    assert "positional argument 0" in message and "object" in message
    assert isinstance(info.value, TypeError)


def test_unencodable_keyword_argument_is_named() -> None:
    with pytest.raises(TypeError, match="argument 'value' of type lock"):
        import threading

        echo.delay(value=threading.Lock())


def test_wrong_call_signature_fails_at_delay() -> None:
    with pytest.raises(
        TypeError, match=r"tests.testapp.tasks.add\(x, y\): missing a required argument: .y."
    ):
        add.delay(1)


def _body(**fields: object) -> bytes:
    data: dict[str, object] = {"id": "1", "task": "x"}
    data.update(fields)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"task": "x"}', "field 'id' must be a non-empty string"),
        (b'{"id": 5, "task": "x"}', "field 'id' must be a non-empty string"),
        (b'{"id": "1"}', "field 'task' must be a non-empty string"),
        (_body(args=3), "field 'args' must be a list"),
        (_body(kwargs=[]), "field 'kwargs' must be an object"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (_body(priority="9"), "field 'priority' must be an integer from 0 to 9"),
        (_body(priority=12), "field 'priority' must be an integer from 0 to 9"),
        (_body(priority=True), "field 'priority' must be an integer from 0 to 9"),
        (_body(retries=-1), "field 'retries' must be an integer >= 0"),
        (_body(queue="a b"), "field 'queue' must be a queue name"),
        (_body(queue="{x}"), "field 'queue' must be a queue name"),
        (_body(eta="soon"), "field 'eta' must be a finite number"),
        (_body(expires="tomorrow"), "field 'expires' must be a finite number"),
        (b'{"id": "1", "task": "x", "expires": NaN}', "field 'expires' must be a finite number"),
        (b'{"id": "1", "task": "x", "eta": Infinity}', "field 'eta' must be a finite number"),
        (_body(time_limit="30"), "field 'time_limit' must be a positive number"),
        (_body(soft_time_limit=-1), "field 'soft_time_limit' must be a positive number"),
        (_body(time_limit=0), "field 'time_limit' must be a positive number"),
        (_body(headers=[]), "field 'headers' must be an object"),
        (_body(parent_id=3), "field 'parent_id' must be a string or null"),
        (_body(group_index="0"), "field 'group_index' must be an integer"),
        (_body(ignore_result="no"), "field 'ignore_result' must be true or false"),
        (_body(link={"task": "y"}), "field 'link' must be a list of signatures"),
        (_body(link=[3]), "field 'link[0]' must be a signature"),
        (_body(link_error=[{"args": []}]), "field 'link_error[0]' must be a signature"),
        (_body(link=[{"task": "y", "args": 5}]), "field 'link[0]' is not a valid signature"),
        (_body(chord=[1]), "field 'chord' must be an object"),
        (_body(chord={"size": 2, "body": {"task": "y"}}), "field 'chord.id'"),
        (_body(chord={"id": "c", "size": "2", "body": {"task": "y"}}), "field 'chord.size'"),
        (_body(chord={"id": "c", "size": 2, "body": {"task": "y"}}), "field 'group_index'"),
        (
            _body(chord={"id": "c", "size": 2, "body": {"task": "y"}}, group_index=2),
            "field 'group_index' must be the header index, 0 to 1",
        ),
        (_body(chord={"id": "c", "size": 2, "body": 7}, group_index=0), "field 'chord.body'"),
        (_body(args=[{"__taskq__": "bytes", "v": 1}]), "tagged value 'bytes' needs a str"),
        (_body(args=[{"__taskq__": "datetime", "v": 1}]), "tagged value 'datetime' needs a str"),
        (_body(args=[{"__taskq__": "uuid", "v": 1}]), "tagged value 'uuid' needs a str"),
        (_body(args=[{"__taskq__": "decimal", "v": 1}]), "tagged value 'decimal' needs a str"),
        (_body(args=[{"__taskq__": "decimal", "v": "x"}]), "tagged value 'decimal' cannot be"),
        (_body(args=[{"__taskq__": "uuid", "v": "x"}]), "tagged value 'uuid' cannot be decoded"),
        (_body(args=[{"__taskq__": "bytes", "v": "!!"}]), "tagged value 'bytes' cannot be"),
        (_body(args=[{"__taskq__": "date"}]), "tagged value 'date' has no 'v'"),
        (_body(args=[{"__taskq__": "set", "v": [[1]]}]), "tagged value 'set' cannot be decoded"),
        (_body(args=[{"__taskq__": "timedelta", "v": "1"}]), "tagged value 'timedelta' needs"),
        (_body(args=[{"__taskq__": "nope", "v": 1}]), "unknown tagged value 'nope'"),
        (_body(args=[{"__taskq__": 3, "v": 1}]), "unknown tagged value 3"),
        (b"p:AAAA", "pickled but this worker accepts only"),
    ],
)
def test_malformed_bodies_raise_decode_error_saying_why(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(fragment)):
        Envelope.decode(body)


def test_pickled_message_is_refused_unless_accepted() -> None:
    env = Envelope(id="1", task="t", args=[object.__name__])
    body = env.encode("pickle")
    with pytest.raises(DecodeError, match="TASKQ_ACCEPT_CONTENT"):
        Envelope.decode(body, ["json"])
    assert Envelope.decode(body, ["json", "pickle"]).args == ["object"]


def test_envelope_round_trip_ignores_unknown_fields() -> None:
    env = Envelope(id="abc", task="t", args=[1], kwargs={"a": dt.date(2020, 1, 1)}, priority=9)
    body = env.encode()
    assert Envelope.decode(body) == env
    assert Envelope.decode(body[:-1] + ',"future_field":1}').id == "abc"
