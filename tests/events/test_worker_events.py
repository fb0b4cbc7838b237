"""The events a real worker writes in its flush, and the counters beside them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from django_taskq import chord, events, group
from django_taskq.broker import keys
from django_taskq.broker.publish import publish
from django_taskq.metrics import counters
from tests.events.helpers import has, of, one, wait_dead_letters, wait_for
from tests.testapp.tasks import add, fail, flaky, progress, sleep_then, xsum

pytestmark = pytest.mark.e2e

HOST = "taskq@events-test"


def _solo(start_worker: Any, *args: str, env: dict[str, str] | None = None) -> Any:
    return start_worker("-P", "solo", "-n", HOST, *args, env=env)


def _timed(event: dict[str, Any]) -> None:
    """A final event of a task that ran: received <= started <= ended, a runtime, the worker."""
    assert event["w"] == HOST
    assert event["rcv"] <= event["st"] <= event["ts"]
    assert isinstance(event["rt"], int) and event["rt"] >= 0
    assert event["dc"] == 1


def test_a_success_is_sent_then_succeeded_with_its_timings(start_worker: Any, broker: Any) -> None:
    _solo(start_worker)
    result = add.delay(2, 3)
    assert result.get(timeout=15) == 5
    found = wait_for(broker, has(result.id, events.SUCCEEDED))
    sent = one(found, result.id, events.SENT)
    assert sent["n"] == "tests.testapp.tasks.add"
    assert (sent["a"], sent["kw"], sent["pr"]) == ("[2, 3]", "{}", 5)
    assert "w" not in sent  # a producer's entry names no worker
    assert '"args":[2,3]' in sent["body"].replace(" ", "")
    done = one(found, result.id, events.SUCCEEDED)
    assert done["res"] == "5" and done["n"] == "tests.testapp.tasks.add"
    _timed(done)
    assert sent["ts"] <= done["rcv"]
    assert [e["k"] for e in of(found, result.id)] == [
        events.SENT,
        events.RECEIVED,
        events.SUCCEEDED,
    ]
    received = one(found, result.id, events.RECEIVED)
    assert received["w"] == HOST and sent["ts"] <= received["rcv"] <= done["st"]

    snapshot = counters.read(broker, ["default"])
    name = "tests.testapp.tasks.add"
    assert snapshot.counters[(counters.SENT, "default", name, "")] == 1
    for metric in (counters.RECEIVED, counters.STARTED, counters.SUCCEEDED):
        assert snapshot.counters[(metric, "default", name, HOST)] == 1
    assert snapshot.histograms[(counters.RUNTIME, "default", name, HOST)].count == 1
    assert snapshot.histograms[(counters.WAIT, "default", name, HOST)].count == 1


def test_a_failure_carries_its_exception_and_traceback(start_worker: Any, broker: Any) -> None:
    _solo(start_worker)
    result = fail.delay("it broke")
    found = wait_for(broker, has(result.id, events.FAILED))
    failed = one(found, result.id, events.FAILED)
    assert failed["exc"] == "ValueError" and failed["msg"] == "it broke"
    assert "raise ValueError(message)" in failed["tb"]
    _timed(failed)
    snapshot = counters.read(broker, ["default"])
    assert snapshot.counters[(counters.FAILED, "default", "tests.testapp.tasks.fail", HOST)] == 1


def test_a_retry_is_retried_then_sent_again_then_succeeded(start_worker: Any, broker: Any) -> None:
    _solo(start_worker)
    result = flaky.delay("events:flaky", 1)
    assert result.get(timeout=15) == 2
    found = wait_for(broker, has(result.id, events.SUCCEEDED))
    kinds = [e["k"] for e in of(found, result.id)]
    assert kinds == [
        events.SENT,
        events.RECEIVED,
        events.RETRIED,
        events.SENT,
        events.RECEIVED,
        events.SUCCEEDED,
    ]
    retried = one(found, result.id, events.RETRIED)
    assert retried["exc"] == "RuntimeError" and retried["msg"] == "attempt 1 failed"
    assert retried["eta"] >= retried["ts"] / 1000  # due after the retry was decided
    again = of(found, result.id, events.SENT)[1]
    assert again["rty"] == 1 and again["eta"] == pytest.approx(retried["eta"])
    assert one(found, result.id, events.SUCCEEDED)["rty"] == 1
    snapshot = counters.read(broker, ["default"])
    name = "tests.testapp.tasks.flaky"
    assert snapshot.counters[(counters.RETRIED, "default", name, HOST)] == 1
    assert snapshot.counters[(counters.SENT, "default", name, "")] == 2


def test_a_revoked_and_an_expired_task_say_why(start_worker: Any, broker: Any) -> None:
    revoked = add.delay(1, 1)
    revoked.revoke()
    stale = add.build_envelope((2, 2))
    stale.expires = time.time() - 60
    publish(stale)
    _solo(start_worker)
    found = wait_for(
        broker, lambda f: bool(of(f, revoked.id, events.REVOKED) and of(f, stale.id, "expired"))
    )
    gone = one(found, revoked.id, events.REVOKED)
    assert gone["msg"] == "revoked before it started" and "st" not in gone and "rt" not in gone
    assert gone["w"] == HOST
    expired = one(found, stale.id, events.EXPIRED)
    assert expired["msg"].startswith("expired at ") and "st" not in expired
    assert one(found, stale.id, events.SENT)["exp"] == pytest.approx(stale.expires)
    snapshot = counters.read(broker, ["default"])
    name = "tests.testapp.tasks.add"
    assert snapshot.counters[(counters.REVOKED, "default", name, HOST)] == 2
    assert (counters.STARTED, "default", name, HOST) not in snapshot.counters


def test_a_malformed_entry_is_dead_with_its_reason(start_worker: Any, broker: Any) -> None:
    stream = keys.stream("default", 5)
    broker.xadd(stream, {"i": "bad-body-id", "b": '{"task": "some.task", "id": 3', "dc": "0"})
    broker.xadd(stream, {"i": b"\xff\xfe", "b": "{}", "dc": "0"})  # no task id to speak of
    marker = add.delay(0, 0)  # after both, in the same stream
    _solo(start_worker)
    marker.get(timeout=15)
    found = wait_for(broker, has(marker.id, events.SUCCEEDED))
    dead = one(found, "bad-body-id", events.DEAD)
    assert "field 'b'" in dead["msg"] and dead["n"] == "<unknown>" and dead["w"] == HOST
    assert [e for e in found if e["k"] == events.DEAD] == [dead]  # none for the unreadable id
    snapshot = counters.read(broker, ["default"])
    assert snapshot.counters[(counters.REJECTED, "default", "<unknown>", HOST)] == 2
    # On Cluster the dead letters go after the flush's barrier, a round trip after the
    # events and counters: wait for them.
    wait_dead_letters(broker, 2)
    assert broker.xlen(keys.dead("default")) == 2


def test_group_and_chord_members_carry_their_group(start_worker: Any, broker: Any) -> None:
    _solo(start_worker)
    members = group(add.s(1, 1), add.s(2, 2)).apply_async()
    assert members.get(timeout=15) == [2, 4]
    total = chord([add.s(3, 3), add.s(4, 4)])(xsum.s())
    assert total.get(timeout=15) == 14
    ids = [r.id for r in members.results]
    found = wait_for(broker, has(total.id, events.SUCCEEDED))
    for task_id in ids:
        sent = one(found, task_id, events.SENT)
        done = one(found, task_id, events.SUCCEEDED)
        assert sent["grp"] == done["grp"] == members.id
    callback = one(found, total.id, events.SENT)
    assert callback["n"] == "tests.testapp.tasks.xsum" and callback["a"] == "[[6, 8]]"
    parts = [e for e in found if e["k"] == events.SUCCEEDED and e["n"].endswith(".add")]
    assert len(parts) == 4 and all("grp" in e for e in parts)


def test_update_state_writes_progress_and_track_started_a_started_event(
    start_worker: Any, broker: Any
) -> None:
    _solo(start_worker)
    key = "events:progress"
    result = progress.delay(2, key)
    found = wait_for(broker, lambda f: len(of(f, result.id, events.PROGRESS)) == 1)
    started = one(found, result.id, events.STARTED)
    assert started["w"] == HOST and started["rcv"] <= started["st"]
    [first] = of(found, result.id, events.PROGRESS)
    assert first["state"] == "PROGRESS" and first["meta"] == {"done": 1, "total": 2}
    broker.rpush(key, "go", "go")
    assert result.get(timeout=15) == 2
    found = wait_for(broker, has(result.id, events.SUCCEEDED))
    kinds = [e["k"] for e in of(found, result.id)]
    assert kinds == [
        events.SENT,
        events.RECEIVED,
        events.STARTED,
        "progress",
        "progress",
        events.SUCCEEDED,
    ]
    assert one(found, result.id, events.SUCCEEDED)["st"] == started["st"]


def test_a_task_still_running_after_a_second_gets_a_started_event(
    start_worker: Any, broker: Any
) -> None:
    _solo(start_worker)
    quick = add.delay(1, 2)
    slow = sleep_then.delay(1.6, "late")
    found = wait_for(broker, has(slow.id, events.STARTED))
    started = one(found, slow.id, events.STARTED)
    assert started["ts"] - started["st"] >= 900  # about a second after it started
    assert not of(found, slow.id, events.SUCCEEDED)  # written while it still ran
    assert slow.get(timeout=15) == "late"
    found = wait_for(broker, has(slow.id, events.SUCCEEDED))
    assert not of(found, quick.id, events.STARTED)  # a quick task has none


def test_a_prefork_worker_writes_the_events_of_its_children(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "prefork", "-c", "2", "-n", HOST)
    results = [add.delay(i, i) for i in range(20)]
    assert [r.get(timeout=15) for r in results] == [2 * i for i in range(20)]
    found = wait_for(broker, lambda f: all(of(f, r.id, events.SUCCEEDED) for r in results))
    for r in results:
        _timed(one(found, r.id, events.SUCCEEDED))
    snapshot = counters.read(broker, ["default"])
    key = (counters.SUCCEEDED, "default", "tests.testapp.tasks.add", HOST)
    assert snapshot.counters[key] == 20


def test_events_off_writes_none_but_counts(start_worker: Any, broker: Any, settings: Any) -> None:
    settings.TASKQ_EVENTS = False
    _solo(start_worker, env={"TASKQ_EVENTS": "0"})
    result = progress.delay(1, "events:off")
    broker.rpush("events:off", "go")
    assert result.get(timeout=15) == 1
    # A later task's result: the flush that settled the first is written by then.
    assert add.delay(1, 1).get(timeout=15) == 2
    assert not broker.exists(keys.events("default"))
    snapshot = counters.read(broker, ["default"])
    name = "tests.testapp.tasks.progress"
    assert snapshot.counters[(counters.SUCCEEDED, "default", name, HOST)] == 1
    assert snapshot.counters[(counters.SENT, "default", name, "")] == 1
