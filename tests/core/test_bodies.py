"""bodies.py: reading a message body outside a worker, and keeping it as text."""

from __future__ import annotations

import pickle
import sys
import zlib
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import bodies
from django_taskq.messages import Envelope


def _body(serializer: str = "json", compression: str | None = None, **fields: Any) -> Any:
    envelope = Envelope(id="b-1", task="t.x", args=[(1, "two")], **fields)
    with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
        return envelope.encode(serializer, compression)


FORMS = [
    ("json", None, "json"),
    ("msgpack", None, "msgpack"),
    ("json", "zlib", "json+zlib"),
    ("msgpack", "zlib", "msgpack+zlib"),
    ("json", "zstd", "json+zstd"),
    ("msgpack", "zstd", "msgpack+zstd"),
]


@pytest.mark.parametrize("serializer, compression, content", FORMS)
def test_every_safe_form_reads_with_its_content(
    serializer: str, compression: str | None, content: str
) -> None:
    body = _body(serializer, compression)
    found = bodies.read(body)
    assert (found.content, found.ok, found.problem) == (content, True, "")
    assert found.data is not None
    assert (found.data["task"], found.data["id"]) == ("t.x", "b-1")
    assert found.data["args"] == ([(1, "two")] if serializer == "msgpack" else [[1, "two"]])


@pytest.mark.parametrize("serializer, compression, content", FORMS)
def test_text_gives_the_same_body_back(
    serializer: str, compression: str | None, content: str
) -> None:
    body = _body(serializer, compression)
    text = bodies.to_text(body)
    assert isinstance(text, str)
    back = bodies.from_text(text)
    assert (back.encode() if isinstance(back, str) else back) == (
        body.encode() if isinstance(body, str) else body
    )
    if isinstance(body, str):
        assert text == body  # JSON stays readable as it is


def test_text_of_bytes_that_are_not_utf8_is_base64_and_of_the_mark_itself_too() -> None:
    assert bodies.to_text(b"\xff\xfe{") == "base64://57"
    assert bodies.from_text(bodies.to_text("base64:abc")) == b"base64:abc"
    with pytest.raises(Exception, match="kept message body is not valid base64"):
        bodies.from_text("base64:not base64!")


def test_a_missing_library_is_this_process_problem_not_the_body(monkeypatch: Any) -> None:
    body = _body("msgpack", "zstd")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    found = bodies.read(body)
    assert (found.content, found.data, found.here_only) == ("msgpack+zstd", None, True)
    assert found.problem == (
        "msgpack+zstd body: zstd needs the zstandard package: pip install "
        "django-taskq-streams[zstd] (not installed in this process; workers that have it can "
        "read it)"
    )


def test_pickle_is_never_unpickled_here() -> None:
    class Tripwire:
        def __reduce__(self) -> Any:
            return (pytest.fail, ("unpickled",))

    for body in (b"pickle+zlib:" + zlib.compress(pickle.dumps(Tripwire())), _body("pickle")):
        found = bodies.read(body)
        assert (found.data, found.here_only) == (None, True)
        assert found.problem.startswith("message is pickled")


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"json+zlib:" + zlib.compress(b'{"id": 1')[:-3], "message body: zlib data is truncated"),
        (b"msgpack:\xc1", "message body: msgpack data cannot be decoded"),
        (b"yaml:{}", "unknown serializer 'yaml'"),
        (b"\xff\xfe", "message body is not UTF-8"),
        (b"[1]", "message body is a list, not an object"),
    ],
)
def test_a_broken_body_says_why(body: bytes, problem: str) -> None:
    found = bodies.read(body)
    assert (found.data, found.here_only, found.ok) == (None, False, False)
    assert problem in found.problem


def test_a_field_no_worker_can_use_is_a_problem_but_still_shown() -> None:
    body = _body("msgpack", None, priority=5)
    import msgpack

    data = msgpack.unpackb(body[len(b"msgpack:") :], strict_map_key=False)
    data["priority"] = "high"
    found = bodies.read(b"msgpack:" + msgpack.packb(data))
    assert found.data is not None and found.data["task"] == "t.x"
    assert not found.ok and "field 'priority'" in found.problem
