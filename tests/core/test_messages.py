"""The JSON codec and the envelope: round trips, and clear errors at the caller."""

from __future__ import annotations

import datetime as dt
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


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"task": "x"}', "lacks required field(s) id"),
        (b'{"id": "1", "task": "x", "args": 3}', "'args' must be a list"),
        (b'{"id": "1", "task": "x", "args": [], "kwargs": []}', "'kwargs' must be an object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_bodies_raise_decode_error_saying_why(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
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
