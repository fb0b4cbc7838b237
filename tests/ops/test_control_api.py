"""django_taskq.control without workers: protocol values, input checks, dead letters, Redis down."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.test import override_settings

from django_taskq import control
from django_taskq.broker import keys
from django_taskq.control import BadRequest, Replies, Reply
from django_taskq.control.protocol import Request
from django_taskq.control.remote import destinations
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.monitor.workers import registered_task_names, workers
from django_taskq.testing import free_port
from tests.ops.helpers import command


# -- the protocol ---------------------------------------------------------------------
def test_a_request_survives_the_channel_and_names_who_must_answer() -> None:
    request = Request.new("ping", {"n": 1}, ("taskq@a",), 5000)
    again = Request.from_payload(json.loads(request.encode()))
    assert again == request
    assert request.reply_key == keys.reply(request.id) == f"{{taskq}}:reply:{request.id}"
    assert request.addressed_to("taskq@a:1:ff", "taskq@a")
    assert request.addressed_to("taskq@a", "whatever")
    assert not request.addressed_to("taskq@b:1:ff", "taskq@b")
    assert Request.new("ping", None, None, 1).addressed_to("x", "y")


def test_messages_that_are_no_request_get_no_reply() -> None:
    assert Request.from_payload({"op": "revoke", "ids": ["t"], "terminate": True}) is None
    assert Request.from_payload({"op": "ping", "id": "../../etc"}) is None
    assert Request.from_payload({"op": 3, "id": "ab" * 8}) is None
    odd = Request.from_payload({"op": "ping", "id": "ab" * 8, "args": [], "reply_ttl": -1})
    assert odd is not None and odd.args == {} and odd.reply_ttl_ms == 60_000


def test_replies_decode_and_group_by_hostname() -> None:
    assert Reply.decode(b"not json") is None and Reply.decode(b"[1]") is None
    ok = Reply.decode(Reply("h@a:1:aa", "h@a", True, {"x": 1}).encode())
    bad = Reply.decode(Reply("h@b:2:bb", "h@b", False, error="nope").encode())
    assert ok == Reply("h@a:1:aa", "h@a", True, {"x": 1})
    assert bad == Reply("h@b:2:bb", "h@b", False, None, "nope")
    replies = Replies("ping", [ok, bad], ["h@c"], 1.0)
    assert not replies.ok and replies.results() == {"h@a": {"x": 1}}
    assert replies.as_dict()["replies"]["h@b:2:bb"] == {
        "hostname": "h@b",
        "ok": False,
        "error": "nope",
    }
    twins = Replies(
        "ping", [Reply("h@a:1:aa", "h@a", True, 1), Reply("h@a:2:bb", "h@a", True, 2)], [], 1.0
    )
    assert twins.ok and twins.results() == {"h@a:1:aa": 1, "h@a:2:bb": 2}


def test_destinations_and_timeouts_are_checked() -> None:
    assert destinations(None) is None
    assert destinations("a") == ("a",) and destinations(["a", " b "]) == ("a", "b")
    with pytest.raises(BadRequest, match="destination names no worker"):
        destinations(["", " "])
    with pytest.raises(BadRequest, match="timeout must be a positive number"):
        control.ping(timeout=0)


def test_no_worker_online_returns_at_once_with_nobody_missing(broker: Any) -> None:
    replies = control.ping(timeout=30)  # returns at once: nobody is expected
    assert replies.replies == [] and replies.missing == []
    assert not broker.exists(keys.reply("0" * 32))


# -- input checks that need no worker --------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: control.rate_limit("tests.testapp.tasks.ad", "1/s"), "Did you mean"),
        (lambda: control.rate_limit("tests.testapp.tasks.add", "1/d"), "is not valid"),
        (lambda: control.rate_limit("tests.testapp.tasks.add", -1), "must be positive"),
        (lambda: control.time_limit("tests.testapp.tasks.add", 0, 5), "must be positive"),
        (lambda: control.time_limit("tests.testapp.tasks.add", "x", 5), "number of seconds"),
        (lambda: control.time_limit("tests.testapp.tasks.add", 6, 5), "must not exceed"),
        (lambda: control.pool_grow(0), "whole number of 1 or more"),
        (lambda: control.pool_shrink(True), "whole number of 1 or more"),
        (lambda: control.scheduled(0), "whole number of 1 or more"),
        (lambda: control.query_task([" "]), "at least one task id"),
        (lambda: control.add_consumer("a b"), "queue must be a name"),
        (lambda: control.cancel_consumer("{x}"), "queue must be a name"),
        (lambda: control.requeue_dead(["1-0", "x"]), "'x' is not a dead letter's entry id"),
        (lambda: control.delete_dead(["nonsense"]), "'nonsense' is not a dead letter's"),
        (lambda: control.purge(["a b"]), "queue must be a name"),
    ],
)
def test_bad_input_raises_bad_request_naming_it(
    broker: Any, call: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()
    assert not broker.exists(keys.task_limits())  # nothing was written


def test_a_task_only_this_process_knows_is_accepted(broker: Any) -> None:
    """A web process may set a limit before any worker started: the registry vouches for it."""
    assert registered_task_names() == set()
    replies = control.rate_limit("tests.testapp.tasks.add", "10/m", timeout=1)
    assert replies.replies == [] and replies.missing == []
    assert broker.hget(keys.task_limits(), "rate:tests.testapp.tasks.add") == b"10/m"
    control.rate_limit("tests.testapp.tasks.add", 0, timeout=1)
    assert broker.hget(keys.task_limits(), "rate:tests.testapp.tasks.add") == b"0"
    control.time_limit("tests.testapp.tasks.add", None, 30, timeout=1)
    assert json.loads(broker.hget(keys.task_limits(), "time:tests.testapp.tasks.add")) == [
        None,
        30.0,
    ]
    control.rate_limit("tests.testapp.tasks.add", None, reset=True, timeout=1)
    control.time_limit("tests.testapp.tasks.add", reset=True, timeout=1)
    assert not broker.exists(keys.task_limits())


# -- dead letters (for the admin: single ids and in bulk, per queue) --------------------
def _dead(broker: Any, queue: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        entry = broker.xadd(
            keys.dead(queue),
            {
                "i": f"t-{queue}-{i}",
                "b": "{}",
                "dc": "4",
                "v": "time_limit:1",
                "reason": "because",
                "stream": keys.stream(queue, 7),
                "at": "1",
            },
        )
        ids.append(entry.decode())
    return ids


def test_requeue_and_delete_single_ids_per_queue(broker: Any) -> None:
    a_ids, b_ids = _dead(broker, "a", 3), _dead(broker, "b", 2)
    broker.sadd(keys.queues(), "a", "b")
    assert control.requeue_dead([a_ids[0], a_ids[2]], queue="a") == 2
    entries = broker.xrange(keys.stream("a", 7))
    assert [f[b"i"] for _, f in entries] == [b"t-a-0", b"t-a-2"]
    assert all(f[b"dc"] == b"0" and b"v" not in f and b"reason" not in f for _, f in entries)
    assert control.delete_dead([b_ids[1], "1-1"], queue="b") == 1
    assert {r["i"] for r in control.dead_letters(10)} == {"t-b-0", "t-a-1"}
    assert [r["queue"] for r in control.dead_letters(10, queue="b")] == ["b"]


def test_requeue_and_delete_a_whole_queue_in_pages(broker: Any) -> None:
    _dead(broker, "big", 1203)
    _dead(broker, "other", 2)
    broker.sadd(keys.queues(), "big", "other")
    assert control.requeue_dead(queue="big") == 1203
    assert broker.xlen(keys.dead("big")) == 0 and broker.xlen(keys.stream("big", 7)) == 1203
    assert broker.xlen(keys.dead("other")) == 2
    assert control.delete_dead() == 2  # every queue
    assert broker.xlen(keys.dead("other")) == 0


# -- Redis down ---------------------------------------------------------------------
@pytest.fixture
def down() -> Iterator[str]:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(TASKQ_BROKER_URL=url):
        yield url


@pytest.mark.parametrize(
    "call",
    [
        lambda: control.ping(timeout=1),
        lambda: control.rate_limit("tests.testapp.tasks.add", "1/s", timeout=1),
        lambda: control.delete_dead(),
        lambda: control.unknown_queues(["a"]),
        lambda: workers(),
        lambda: registered_task_names(),
    ],
)
def test_remote_calls_with_redis_down_raise_broker_unavailable(
    down: str, call: Callable[[], Any]
) -> None:
    with pytest.raises(BrokerUnavailable, match=rf"^cannot .*: Redis at {down} is unreachable"):
        call()


@pytest.mark.parametrize(
    "args",
    [["taskq_inspect", "ping"], ["taskq_control", "shutdown"], ["taskq_dead", "--delete", "-f"]],
)
def test_commands_with_redis_down_say_it_in_one_line(down: str, args: list[str]) -> None:
    with pytest.raises(CommandError, match=f"Redis at {down} is unreachable") as info:
        command(*args)
    assert "\n" not in str(info.value)


# -- dead letters with msgpack or compressed bodies (codecs.py) ------------------------------
def _coded_dead(broker: Any, queue: str, body: bytes, task_id: str) -> str:
    broker.sadd(keys.queues(), queue)
    fields = {"i": task_id, "b": body, "dc": "1", "reason": "r", "stream": keys.stream(queue, 5)}
    return str(broker.xadd(keys.dead(queue), fields).decode())


def _coded_body(task_id: str, serializer: str, compression: str | None) -> bytes:
    from django.test import override_settings

    from django_taskq.messages import Envelope

    with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
        body = Envelope(id=task_id, task="t.x", args=[(1, 2)]).encode(serializer, compression)
    assert isinstance(body, bytes)
    return body


def test_dead_letters_give_a_coded_body_losslessly_with_its_content(broker: Any) -> None:
    import base64

    from django_taskq.messages import Envelope

    body = _coded_body("c-1", "msgpack", "zlib")
    _coded_dead(broker, "c", body, "c-1")
    [row] = control.dead_letters(5, queue="c")
    assert row["content"] == "msgpack+zlib"
    # Text that gives the bytes back (the old text lost them: utf-8 with replacements).
    assert row["b"] == "base64:" + base64.b64encode(body).decode()
    raw = base64.b64decode(row["b"].removeprefix("base64:"))
    assert Envelope.decode(raw, ["msgpack", "zlib"]).args == [(1, 2)]


def test_requeue_refusals_name_what_no_worker_could_decode(broker: Any, monkeypatch: Any) -> None:
    import sys

    good = _coded_dead(broker, "c", _coded_body("c-2", "msgpack", "zstd"), "c-2")
    cut = _coded_dead(broker, "c", _coded_body("c-3", "json", "zlib")[:-5], "c-3")
    wrong = _coded_dead(broker, "c", b"msgpack:\x92\x01", "c-4")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # here only: workers may have it
    refused = control.requeue_refusals([good, cut, wrong, "1-1"], queue="c")
    assert refused == {
        cut: "message body: zlib data is truncated",
        wrong: "message body: msgpack data cannot be decoded: Unpack failed: incomplete input",
    }
    assert control.requeue_refusals([cut]) == {cut: "message body: zlib data is truncated"}
