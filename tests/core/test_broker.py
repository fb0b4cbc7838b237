"""The broker's building blocks against a real Redis: results, publishing, keys, registry."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import states
from django_taskq.broker import keys, results, topology
from django_taskq.broker import queues as registry
from django_taskq.broker.delayed import PROMOTE_CALLS, PROMOTE_LIMIT
from django_taskq.broker.publish import publish, publish_many
from django_taskq.messages import dumps
from django_taskq.worker.maintenance import Maintenance
from tests.testapp.tasks import add


def _record(state: str, **extra: Any) -> str:
    return dumps({"status": state, "result": extra.pop("result", None), **extra})


def _state(broker: Any, task_id: str) -> str:
    return str(json.loads(broker.get(keys.result(task_id)))["status"])


# -- forward-only results ------------------------------------------------------------
@pytest.mark.parametrize("later", [states.PENDING, states.STARTED, states.RETRY, "PROGRESS"])
@pytest.mark.parametrize("final", [states.SUCCESS, states.FAILURE, states.REVOKED])
def test_a_final_state_is_never_replaced_by_a_non_final_one(
    broker: Any, final: str, later: str
) -> None:
    assert results.store("t", _record(final), final) is None
    kept = results.store("t", _record(later), later)
    assert kept is not None and kept["status"] == final
    assert _state(broker, "t") == final


def test_the_first_final_state_stays(broker: Any) -> None:
    """A task run again after a crash converges on the outcome stored first."""
    results.store("t", _record(states.SUCCESS, result=1), states.SUCCESS)
    kept = results.store("t", _record(states.FAILURE), states.FAILURE)
    assert kept == {"status": states.SUCCESS, "result": 1}
    assert _state(broker, "t") == states.SUCCESS


def test_a_provisional_revoke_gives_way_to_the_outcome_a_worker_reached(broker: Any) -> None:
    results.store("t", _record(states.REVOKED, provisional=True), states.STARTED)
    assert _state(broker, "t") == states.REVOKED
    assert results.store("t", _record("PROGRESS"), "PROGRESS") is not None  # not a final one
    assert results.store("t", _record(states.SUCCESS, result=3), states.SUCCESS) is None
    assert _state(broker, "t") == states.SUCCESS


def test_non_final_states_move_freely_until_a_final_one(broker: Any) -> None:
    for state in (states.STARTED, states.RETRY, states.STARTED, "PROGRESS"):
        assert results.store("t", _record(state), state) is None
        assert _state(broker, "t") == state


def test_a_batch_of_records_is_stored_forward_only_each(broker: Any) -> None:
    results.store("done", _record(states.SUCCESS), states.SUCCESS)
    results.store_many(
        [
            ("done", _record(states.STARTED), states.STARTED),
            ("new", _record(states.SUCCESS), states.SUCCESS),
        ]
    )
    assert _state(broker, "done") == states.SUCCESS
    assert _state(broker, "new") == states.SUCCESS


def test_an_attempt_entry_rides_on_its_record_and_only_a_stored_one(broker: Any) -> None:
    """A Django task's attempts list (attempts.py): appended with the record, capped, same TTL."""
    from django_taskq.attempts import Attempt

    listed = keys.attempts("t")
    for n in range(5):
        entry = json.dumps({"w": f"w{n}"})
        assert (
            results.store("t", _record(states.STARTED), states.STARTED, attempt=Attempt(entry, 3))
            is None
        )
    # The newest three are kept; an empty entry renews the expiry, adds nothing.
    assert (
        results.store("t", _record(states.SUCCESS), states.SUCCESS, attempt=Attempt("", 3)) is None
    )
    assert [json.loads(e)["w"] for e in broker.lrange(listed, 0, -1)] == ["w2", "w3", "w4"]
    assert abs(broker.pttl(listed) - broker.pttl(keys.result("t"))) < 1000
    # A refused write (a final state is stored) appends nothing.
    kept = results.store(
        "t", _record(states.FAILURE), states.FAILURE, attempt=Attempt('{"exc":"x"}', 3)
    )
    assert kept is not None and broker.llen(listed) == 3
    # In one call, records with and without an attempt (a mixed flush) each get theirs.
    results.store_many(
        [
            ("plain", _record(states.SUCCESS), states.SUCCESS),
            ("django", _record(states.RETRY), states.RETRY, Attempt('{"exc":"x","w":"a"}', 9)),
            ("plain2", _record(states.STARTED), states.STARTED),
        ]
    )
    assert {_state(broker, i) for i in ("plain", "plain2")} == {states.SUCCESS, states.STARTED}
    assert _state(broker, "django") == states.RETRY
    assert broker.lrange(keys.attempts("django"), 0, -1) == [b'{"exc":"x","w":"a"}']
    assert broker.exists(keys.attempts("plain"), keys.attempts("plain2")) == 0


def test_batches_follow_the_topology(broker: Any) -> None:
    items = [(f"id{i}", "r", states.SUCCESS) for i in range(600)]
    batches = topology.script_batches(broker, items, lambda item: keys.result(item[0]))
    if not topology.is_cluster(broker):
        assert [len(b) for b in batches] == [256, 256, 88]  # one Redis: any keys together
        return
    from redis.crc import key_slot

    # Cluster: one call per slot, each touching the keys of its slot only.
    slots = [{key_slot(keys.result(i).encode()) for i, _, _ in batch} for batch in batches]
    assert all(len(s) == 1 for s in slots)
    assert sum(len(b) for b in batches) == 600


def test_a_pending_record_never_overwrites_a_state_stored_first(broker: Any) -> None:
    """The PENDING record is written after the message, with SET NX."""
    envelope = add.build_envelope((1, 2), task_id="fast")
    results.store("fast", _record(states.SUCCESS, result=3), states.SUCCESS)
    publish(envelope)
    assert _state(broker, "fast") == states.SUCCESS


# -- publishing once ---------------------------------------------------------------------
def test_a_publish_sent_again_is_queued_once(broker: Any) -> None:
    """What a delay() retried after a lost reply does: the once key drops the second."""
    envelope = add.build_envelope((1, 2))
    assert publish(envelope) is True
    assert publish(envelope) is False
    assert broker.xlen(keys.stream("default", 5)) == 1
    assert 0 < broker.pttl(keys.once("default", envelope.id)) <= 60_000


def test_a_delayed_publish_sent_again_is_queued_once(broker: Any) -> None:
    envelope = add.build_envelope((1, 2), countdown=60)
    assert publish(envelope) and not publish(envelope)
    assert broker.zcard(keys.delayed("default")) == 1


def test_publish_many_counts_only_what_it_queued(broker: Any) -> None:
    envelopes = [add.build_envelope((i, i)) for i in range(5)]
    assert publish(envelopes[0])
    assert publish_many(envelopes) == 4
    assert broker.xlen(keys.stream("default", 5)) == 5


def test_a_retry_is_a_publish_of_its_own(broker: Any) -> None:
    first = add.build_envelope((1, 2), task_id="r")
    retry = add.build_envelope((1, 2), task_id="r", retries=1)
    assert publish(first) and publish(retry)
    assert broker.xlen(keys.stream("default", 5)) == 2


# -- keys ----------------------------------------------------------------------------------
def test_every_key_of_a_queue_shares_its_hash_tag() -> None:
    tag = "{taskq:emails}"
    for key in [
        *keys.queue_streams("emails"),
        keys.delayed("emails"),
        keys.dead("emails"),
        keys.revoked("emails"),
        keys.once("emails", "x"),
    ]:
        assert key.startswith(tag + ":"), key
    assert keys.queue_of(keys.stream("a:b", 7)) == ("a:b", 7)


def test_every_key_of_a_task_shares_its_hash_tag() -> None:
    for key in [keys.result("t1"), keys.waiters("t1"), keys.wakeup("t1", "w")]:
        assert key.startswith("{taskq:t1}:"), key


@pytest.mark.parametrize("name", ["", "a b", "{x}", "x}", "a\nb", "x" * 201, 5])
def test_queue_names_that_cannot_go_in_a_key_are_refused(name: Any) -> None:
    with pytest.raises(ValueError, match="taskq_worker -Q: queue must be a name"):
        keys.check_queue_name(name, "taskq_worker -Q")


# -- what stays bounded ------------------------------------------------------------------
def test_an_empty_unused_queue_is_forgotten_and_a_busy_one_kept(broker: Any) -> None:
    publish(add.build_envelope((1, 1), queue="busy"))
    publish(add.build_envelope((1, 1), queue="gone"))
    broker.xtrim(keys.stream("gone", 5), maxlen=0)
    # A cutoff a second ahead: the streams' last writes are all "long ago".
    with override_settings(TASKQ_QUEUE_FORGET_AFTER=-1):
        assert registry.prune(broker) == ["gone"]
    assert registry.known(broker) == ["busy"]
    assert not broker.exists(keys.stream("gone", 5))
    # Publishing to it again brings it back.
    from django_taskq.broker import connection

    connection.reset()
    publish(add.build_envelope((2, 2), queue="gone"))
    assert registry.known(connection.get_broker()) == ["busy", "gone"]


def test_a_queue_with_delayed_or_dead_messages_is_kept(broker: Any) -> None:
    publish(add.build_envelope((1, 1), queue="later", countdown=600))
    broker.sadd(keys.queues(), "deadish")
    broker.xadd(keys.dead("deadish"), {"reason": "x"})
    with override_settings(TASKQ_QUEUE_FORGET_AFTER=-1):
        assert registry.prune(broker) == []
    assert registry.known(broker) == ["deadish", "later"]


def test_workers_gone_for_long_are_forgotten(broker: Any) -> None:
    old = (time.time() - 7200) * 1000
    broker.zadd(keys.workers(), {"ghost": old, "alive": time.time() * 1000})
    with override_settings(TASKQ_WORKER_FORGET_AFTER=3600):
        Maintenance(threading.Event(), ["default"]).prune()
    assert [m.decode() for m in broker.zrange(keys.workers(), 0, -1)] == ["alive"]


def test_a_large_due_backlog_is_promoted_in_bounded_steps(broker: Any) -> None:
    count = PROMOTE_LIMIT * PROMOTE_CALLS + 10
    due = time.time() - 1
    pipe = broker.pipeline(transaction=False)
    for i in range(count):
        pipe.zadd(keys.delayed("default"), {f"5\nid{i}\n{{}}": int(due * 1000)})
    pipe.execute()
    maintenance = Maintenance(threading.Event(), ["default"])
    assert maintenance.promote("default") is True  # more left: the loop comes back at once
    assert broker.xlen(keys.stream("default", 5)) == PROMOTE_LIMIT * PROMOTE_CALLS
    assert maintenance.promote("default") is False
    assert broker.xlen(keys.stream("default", 5)) == count
