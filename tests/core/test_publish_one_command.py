"""A ``delay()`` is one command: enqueue.lua queues the message and writes its PENDING record.

On a single Redis (and a Sentinel master) the result key may sit beside the
queue's keys, so the script writes the record itself, with SET NX, and the
producer sends one EVALSHA with no pipeline around it. On a Cluster the
record lives in the task's own slot and is written beside the call. Either
way the record is there when ``delay()`` returns.

The commands are seen with MONITOR: after the sends, an ECHO of a marker
from the same client tells when everything before it has been seen. The
monitor has a client of its own, so the producer keeps its connection.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
import redis

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.result import AsyncResult
from tests.testapp.tasks import add
from tests.topology import single_redis_only


def _commands_of(send: Any) -> list[tuple[str, list[str]]]:
    """(client type, command words) of every command Redis ran while ``send()`` ran."""
    client = get_broker()
    watcher = redis.Redis.from_url(os.environ["TASKQ_BROKER_URL"])  # a pool of its own
    marker = f"marker-{uuid.uuid4().hex}"
    with watcher.monitor() as monitor:
        send()
        client.echo(marker)
        seen: list[tuple[str, list[str]]] = []
        while True:
            entry = monitor.next_command()
            words = str(entry["command"]).split(" ")
            if words[0] == "ECHO" and marker in entry["command"]:
                return seen
            seen.append((str(entry.get("client_type") or ""), words))


def _from_client(commands: list[tuple[str, list[str]]]) -> list[str]:
    return [words[0] for kind, words in commands if kind != "lua"]


@single_redis_only
def test_a_delay_is_one_evalsha_that_also_writes_the_pending_record() -> None:
    add.delay(0, 0)  # the first send of a client registers the queue too
    sent: list[AsyncResult] = []
    commands = _commands_of(lambda: sent.append(add.delay(1, 2)))
    assert _from_client(commands) == ["EVALSHA"]
    scripted = [words for kind, words in commands if kind == "lua"]
    result_key = keys.result(sent[0].id)
    assert any(w[0] == "SET" and result_key in w[1] and "NX" in w for w in scripted), scripted
    assert sent[0].state == states.PENDING
    assert get_broker().pttl(result_key) > 0


@single_redis_only
def test_a_countdown_and_an_ignored_result_are_one_command_too() -> None:
    add.delay(0, 0)
    sent: list[AsyncResult] = []
    commands = _commands_of(
        lambda: (
            sent.append(add.apply_async((1, 2), countdown=60)),
            sent.append(add.apply_async((3, 4), ignore_result=True)),
        )
    )
    assert _from_client(commands) == ["EVALSHA", "EVALSHA"]
    delayed, ignored = sent
    assert delayed.state == states.PENDING
    # Kept past the ETA: the record outlives the wait by RESULT_EXPIRES.
    assert get_broker().pttl(keys.result(delayed.id)) > 60_000
    assert not get_broker().exists(keys.result(ignored.id))


@single_redis_only
def test_a_publish_sent_again_leaves_a_stored_state_alone() -> None:
    """The record is written SET NX: a state a worker stored is never put back to PENDING."""
    from django_taskq.broker.publish import publish

    sent = add.apply_async((1, 2), countdown=60)
    client = get_broker()
    stored = client.get(keys.result(sent.id))
    assert stored is not None
    started = stored.replace(b'"PENDING"', b'"STARTED"')
    client.set(keys.result(sent.id), started)
    envelope = add.build_envelope((1, 2), task_id=sent.id, retries=1, countdown=60)
    assert publish(envelope) is True
    assert client.get(keys.result(sent.id)) == started


@single_redis_only
def test_the_queue_registration_is_still_sent_when_due() -> None:
    """The registry lost a queue (pruned, or Redis lost its data): a new client adds it back."""
    from django_taskq.broker import connection

    add.delay(0, 0)
    client = get_broker()
    client.delete(keys.queues())
    connection.reset()  # a new client registers at its first send
    commands = _commands_of(lambda: add.delay(1, 2))
    assert "SADD" in _from_client(commands)
    assert get_broker().sismember(keys.queues(), "default")


def test_the_pending_record_is_there_on_cluster_and_sentinel(topology: Any) -> None:
    sent = add.delay(1, 2)
    assert sent.state == states.PENDING
    assert sent.exists()
    again = add.apply_async((1, 2), countdown=60, ignore_result=True)
    assert not get_broker().exists(keys.result(again.id))


@pytest.mark.parametrize("ignore_result", [False, True])
def test_a_refused_unique_send_leaves_no_record_of_its_own(ignore_result: bool) -> None:
    first = add.apply_async((1, 2), unique_key=f"one-{ignore_result}", unique_for=60)
    second = add.apply_async(
        (1, 2),
        unique_key=f"one-{ignore_result}",
        unique_for=60,
        task_id="refused",
        ignore_result=ignore_result,
    )
    assert second.id == first.id
    assert not get_broker().exists(keys.result("refused"))
