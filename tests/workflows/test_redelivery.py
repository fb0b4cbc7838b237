"""Workflows stay correct under at-least-once delivery.

The first tests play the worker's part by hand (run ``after_finish`` for a
message, then again as a redelivery would), so every crash window is hit on
purpose; the last ones kill real worker subprocesses.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from django_taskq import AsyncResult, chain, chord, states
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.scripts import script
from django_taskq.exceptions import ChordError, TaskRevokedError
from django_taskq.followups import FollowUps, after_finish
from django_taskq.messages import Envelope, dumps
from django_taskq.trace import Outcome
from tests.testapp.tasks import (
    add,
    mul,
    wf_count_calls,
    wf_gate,
    wf_on_error,
    wf_retry_twice,
    wf_slow,
    xsum,
)


def _take(broker: Any) -> list[Envelope]:
    """Every message waiting in the default queue, removed from it (as a worker fetches)."""
    out = []
    for priority in range(10):
        stream = keys.stream("default", priority)
        for entry_id, fields in broker.xrange(stream):
            out.append(Envelope.decode(fields[b"b"]))
            broker.xdel(stream, entry_id)
    return out


def _ok(value: Any) -> Outcome:
    return Outcome(states.SUCCESS, value=value)


# -- chord_part.lua ------------------------------------------------------------
def test_chord_part_counts_each_index_once_and_returns_all_parts_when_complete(
    broker: Any,
) -> None:
    count = script(broker, "chord_part")

    def part(index: int, value: int) -> Any:
        body = dumps({"ok": True, "id": f"t{index}", "v": value})
        return count(keys=["c"], args=[index, body, 3, 60000], client=broker)

    assert part(0, 10) == 1
    assert part(0, 99) == 1  # the same index again (a redelivery) is not counted
    assert part(2, 30) == 2
    complete = part(1, 20)
    assert isinstance(complete, list)
    parts = dict(zip(complete[0::2], complete[1::2], strict=True))
    assert json.loads(parts[b"0"])["v"] == 10  # the first outcome of an index is kept
    # complete is reported again to a late redelivery (it may have to publish the body)
    assert isinstance(part(2, 30), list)
    assert 0 < broker.pttl("c") <= 60000
    with pytest.raises(Exception, match="outside"):
        part(3, 0)


# -- after_finish, run again as a redelivery would --------------------------------
def test_chain_step_is_published_once_when_its_parent_runs_twice(broker: Any) -> None:
    result = chain(add.s(1, 1), mul.s(10))()
    (first,) = _take(broker)
    after_finish(first, _ok(2))
    after_finish(first, _ok(2))  # re-run after a crash before the ack
    (second,) = _take(broker)
    assert second.id == result.id and second.args == [2, 10]
    assert second.parent_id == first.id and second.root_id == first.id


def test_unfrozen_link_gets_the_same_id_on_a_rerun(broker: Any) -> None:
    add.apply_async((1, 1), link=mul.s(3))
    (first,) = _take(broker)
    after_finish(first, _ok(2))
    (linked,) = _take(broker)
    after_finish(first, _ok(2))
    assert _take(broker) == []
    assert linked.args == [2, 3]


def test_chord_body_starts_once_however_often_header_tasks_finish(broker: Any) -> None:
    result = chord([add.s(i, i) for i in range(5)], xsum.s())()
    header = _take(broker)
    assert len(header) == 5
    for envelope in header:
        after_finish(envelope, _ok(sum(envelope.args)))
        after_finish(envelope, _ok(sum(envelope.args)))
    for envelope in reversed(header):  # late redeliveries after the body was sent
        after_finish(envelope, _ok(sum(envelope.args)))
    (body,) = _take(broker)
    assert body.id == result.id and body.args == [[0, 2, 4, 6, 8]]


def test_crash_between_counting_and_publishing_the_body(broker: Any) -> None:
    chord([add.s(1, 1), add.s(2, 2)], xsum.s())()
    first, last = _take(broker)
    after_finish(first, _ok(2))
    # The worker running the last task counts it, then dies before publishing.
    assert last.chord is not None
    FollowUps().chord_part(last.chord, last.group_index, last.id, last.id, value=4)
    assert _take(broker) == []
    # Its message is redelivered: counting again is a no-op, the body is published.
    after_finish(last, _ok(4))
    after_finish(first, _ok(2))
    (body,) = _take(broker)
    assert body.args == [[2, 4]]


def test_failed_chain_step_fails_what_follows_and_calls_its_errback_once(broker: Any) -> None:
    workflow = chain(add.s(1, 1), mul.s(2), add.s(3))
    workflow.link_error(wf_on_error.s("k"))
    result = workflow()
    (first,) = _take(broker)
    failure = Outcome(states.FAILURE, exception=ValueError("bad input"), traceback="tb")
    after_finish(first, failure)
    after_finish(first, failure)
    (errback,) = _take(broker)
    assert errback.task == "tests.testapp.tasks.wf_on_error"
    assert errback.args == [first.id, "k"]
    assert AsyncResult(first.id).state == states.FAILURE  # stored before the errback is sent
    for later in (result.parent, result):
        assert later.state == states.FAILURE
        with pytest.raises(ValueError, match="bad input"):
            later.get(timeout=1)


def test_failed_header_task_in_a_chain_member_is_counted(broker: Any) -> None:
    result = chord([chain(add.s(1, 1), mul.s(2)), add.s(5, 5)], xsum.s())()
    chain_first, plain = _take(broker)
    after_finish(plain, _ok(10))
    after_finish(chain_first, Outcome(states.FAILURE, exception=KeyError("gone")))
    assert _take(broker) == []  # the body never starts
    with pytest.raises(ChordError, match="raised KeyError"):
        result.get(timeout=1)


# -- real workers ----------------------------------------------------------------
def _held_by(broker: Any, hostname: str) -> int:
    """Messages of the default queue fetched, not yet acked, by consumers of ``hostname``."""
    held = 0
    for priority in range(10):
        stream = keys.stream("default", priority)
        if not broker.exists(stream):
            continue
        for consumer in broker.xpending(stream, keys.GROUP).get("consumers") or []:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            if name.startswith(f"{hostname}:"):
                held += int(consumer["pending"])
    return held


def _drained(broker: Any, timeout: float) -> None:
    """Wait until every message of the default queue has been acked."""
    deadline = time.monotonic() + timeout
    streams = [keys.stream("default", p) for p in range(10)]
    while time.monotonic() < deadline:
        if sum(broker.xlen(s) for s in streams) == 0:
            return
        time.sleep(0.1)
    raise AssertionError("messages were still waiting or pending")


@pytest.mark.e2e
def test_chord_of_200_survives_a_killed_worker(start_worker: Any) -> None:
    broker = get_broker()
    victim = start_worker("-P", "prefork", "-c", "2", "--hostname", "victim")
    survivor = start_worker("-P", "prefork", "-c", "2", "--hostname", "survivor")
    key, gate = "wf:body-calls", "wf:gate"
    # The last 20 header tasks wait for the gate, opened only after the kill:
    # however slow this machine, the chord cannot finish before the kill.
    header = [wf_slow.s(i, 0.03) for i in range(180)]
    header += [wf_gate.s(i, gate) for i in range(180, 200)]
    result = chord(header, wf_count_calls.s(key))()
    parts = keys.chord_parts(result.parent.id)
    deadline = time.monotonic() + 30
    while not (broker.hlen(parts) >= 40 and _held_by(broker, "victim")):
        assert time.monotonic() < deadline, "the victim never held a message of the chord"
        time.sleep(0.01)
    victim.kill()  # SIGKILL, parent and children, mid-run, holding messages
    assert 40 <= broker.hlen(parts) < 200 and not result.ready()
    broker.rpush(gate, "open")
    assert result.get(timeout=60) == list(range(200))
    _drained(broker, timeout=30)
    # the victim's unacked messages really were redelivered to the survivor
    assert "recovered" in survivor.wait_for_line("from lost workers", timeout=5)
    assert broker.get(key) == b"1"
    (args,) = broker.lrange(f"{key}:args", 0, -1)
    assert json.loads(args) == list(range(200))


@pytest.mark.e2e
def test_header_tasks_that_retry_twice_start_the_body_once(start_worker: Any) -> None:
    broker = get_broker()
    start_worker("-P", "prefork", "-c", "2")
    attempts, calls = "wf:attempts", "wf:retry-body"
    result = chord([wf_retry_twice.s(i, attempts) for i in range(10)], wf_count_calls.s(calls))()
    assert result.get(timeout=30) == list(range(10))
    _drained(broker, timeout=10)
    assert broker.get(calls) == b"1"
    assert {int(v) for v in broker.hvals(attempts)} == {3}


@pytest.mark.e2e
def test_revoked_header_task_fails_the_chord_instead_of_stalling_it(start_worker: Any) -> None:
    result = chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)], xsum.s())()
    revoked = result.parent.results[1]
    revoked.revoke()
    start_worker("-P", "solo")
    with pytest.raises(ChordError, match=f"Dependency {revoked.id} raised .*TaskRevokedError"):
        result.get(timeout=10)


@pytest.mark.e2e
def test_revoked_chain_step_fails_the_rest_of_the_chain(start_worker: Any) -> None:
    result = chain(add.s(1, 1), add.s(1), add.s(1))()
    result.parent.revoke()  # the middle step, before it is even sent
    start_worker("-P", "solo")
    with pytest.raises(TaskRevokedError):
        result.get(timeout=10)
    assert result.parent.parent.get(timeout=5) == 2
