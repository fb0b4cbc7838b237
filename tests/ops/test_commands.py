"""taskq_call, taskq_purge and taskq_dead as a user runs them (real processes, real Redis).

Each defect a new user met has its test here: ``taskq_call`` failing with
KeyError 'args' (only through ``manage.py``, which call_command() bypasses),
options without help, ``taskq_purge`` silent about a queue that does not
exist, ``taskq_dead --requeue nonsense`` ending in a traceback.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management.base import CommandError

from django_taskq import AsyncResult, control
from django_taskq.broker import keys
from django_taskq.broker.publish import publish
from django_taskq.messages import Envelope
from tests.events.helpers import wait_dead_letters
from tests.ops.helpers import command, manage
from tests.testapp.tasks import add


# -- taskq_call ---------------------------------------------------------------------
def test_taskq_call_sends_a_task_and_waits_for_its_result(start_worker: Any) -> None:
    start_worker("-P", "solo")
    done = manage("taskq_call", "tests.testapp.tasks.add", "--args", "[2, 3]", "--wait", "15")
    assert done.returncode == 0, done.stderr
    task_id, outcome = done.stdout.strip().splitlines()
    assert outcome == "SUCCESS: 5"
    assert AsyncResult(task_id).get(timeout=1) == 5
    done = manage(
        "taskq_call",
        "tests.testapp.tasks.echo",
        "--kwargs",
        '{"value": "hi"}',
        "--queue",
        "default",
        "--priority",
        "9",
        "--wait",
        "15",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("SUCCESS: 'hi'")


def test_taskq_call_countdown_and_queue_land_where_asked(broker: Any) -> None:
    done = manage(
        "taskq_call",
        "tests.testapp.tasks.add",
        "--args",
        "[1, 1]",
        "--countdown",
        "600",
        "--queue",
        "later",
    )
    assert done.returncode == 0, done.stderr
    [(member, _)] = broker.zrange(keys.delayed("later"), 0, -1, withscores=True)
    assert done.stdout.strip().encode() in member


def test_taskq_call_errors_are_one_line(broker: Any) -> None:
    cases = {
        ("tests.testapp.tasks.nope",): "is not registered",
        ("tests.testapp.tasks.add", "--args", "[1"): "--args/--kwargs must be JSON",
        ("tests.testapp.tasks.add", "--args", "{}"): "--args must be a JSON list",
        ("tests.testapp.tasks.add", "--args", "[1, 2, 3]"): "add",
        ("tests.testapp.tasks.add", "--args", "[1, 1]", "--wait", "0.3"): "no result within",
    }
    for args, text in cases.items():
        done = manage("taskq_call", *args)
        assert done.returncode == 1, (args, done.stdout)
        assert "Traceback" not in done.stderr and text in done.stderr, (args, done.stderr)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("taskq_worker", "-c", "0"), "-c/--concurrency: '0' is not a whole number >= 1"),
        (("taskq_worker", "-c", "-3"), "'-3' is not a whole number >= 1"),
        (("taskq_worker", "--prefetch", "0"), "--prefetch: '0'"),
        (("taskq_worker", "--max-tasks-per-child", "-1"), "--max-tasks-per-child: '-1'"),
        (("taskq_worker", "--max-memory-per-child", "0"), "is not a memory size"),
        (("taskq_worker", "--max-memory-per-child", "lots"), "is not a memory size"),
        (("taskq_worker", "--time-limit", "nan"), "is not a number of seconds > 0"),
        (("taskq_worker", "--soft-time-limit", "-5"), "is not a number of seconds > 0"),
        (("taskq_call", "tests.testapp.tasks.add", "--priority", "12"), "from 0 to 9"),
        (("taskq_call", "tests.testapp.tasks.add", "--wait", "-1"), "--wait: '-1'"),
        (("taskq_dead", "--count", "0"), "--count: '0'"),
        (("taskq_inspect", "--dead", "-1"), "--dead: '-1' is not a whole number >= 0"),
        (("taskq_inspect", "scheduled", "--limit", "0"), "--limit: '0'"),
        (("taskq_inspect", "ping", "--timeout", "0"), "--timeout: '0'"),
        (("taskq_recorder", "--lease", "0"), "--lease: '0' is not a number of seconds >= 1"),
        (("taskq_recorder", "--lease", "nan"), "--lease: 'nan'"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else None,
)
def test_a_number_out_of_range_is_a_usage_error_naming_the_option(
    args: tuple[str, ...], says: str
) -> None:
    """``type=int`` took ``-c 0``, ``-c -3`` and ``--prefetch 0``; now argparse refuses them."""
    with pytest.raises(CommandError) as refused:
        command(*args)
    assert says in str(refused.value)


def test_every_taskq_call_option_has_help() -> None:
    done = manage("taskq_call", "--help")
    text = " ".join(done.stdout.split())
    for phrase in (
        "--args JSON JSON list of positional arguments",
        "--kwargs JSON JSON object of keyword arguments",
        "--countdown SECONDS Run it no sooner than SECONDS from now",
        "--queue QUEUE Send it to this queue",
        "--priority 0-9 Priority from 0 to 9",
        "--wait SECONDS Wait up to SECONDS",
    ):
        assert phrase in text, phrase


# -- taskq_purge --------------------------------------------------------------------
def test_purge_empties_a_queue_no_worker_has_consumed(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo", "-Q", "busy")  # consumes another queue
    for priority in (0, 5, 9):
        add.apply_async((1, priority), queue="fresh", priority=priority)
    add.apply_async((1, 1), queue="fresh", countdown=600)
    assert control.queue_stats(broker, "fresh") == {
        "waiting": 3,
        "running": 0,
        "delayed": 1,
        "dead": 0,
    }
    done = manage("taskq_purge", "-Q", "fresh", "-f")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Purged 4 message(s) from fresh."
    assert control.queue_stats(broker, "fresh") == {
        "waiting": 0,
        "running": 0,
        "delayed": 0,
        "dead": 0,
    }
    assert add.apply_async((2, 2), queue="busy").get(timeout=15) == 4


def test_purge_leaves_fetched_messages_and_says_so(start_worker: Any, broker: Any) -> None:
    from tests.ops.helpers import release, started
    from tests.testapp.tasks import gated

    start_worker("-P", "solo")
    running = gated.delay("purge")
    started(broker, "purge")
    add.delay(1, 1)
    out, _ = command("taskq_purge", "-Q", "default", "-f")
    assert out.strip() == "Purged 1 message(s) from default; 1 fetched by workers left to run."
    release(broker, "purge")
    assert running.get(timeout=15) > 0


def test_purge_warns_about_a_queue_that_does_not_exist(broker: Any) -> None:
    add.apply_async((1, 1), queue="real")
    done = manage("taskq_purge", "-Q", "nosuchqueue", "-f")
    assert done.returncode == 1
    assert "Warning: there is no queue 'nosuchqueue'" in done.stderr
    assert "CommandError: nothing to purge: no such queue (known queues: real)" in done.stderr
    assert "Purged" not in done.stdout
    done = manage("taskq_purge", "-Q", "real,nosuchqueue", "-f")
    assert done.returncode == 0
    assert "Warning: there is no queue 'nosuchqueue'" in done.stderr
    assert done.stdout.strip() == "Purged 1 message(s) from real."
    with pytest.raises(CommandError, match="queue must be a name"):
        command("taskq_purge", "-Q", "a{b}", "-f")


def test_purge_of_every_queue(broker: Any) -> None:
    add.apply_async((1, 1), queue="a")
    add.apply_async((1, 1), queue="b", countdown=60)
    out, _ = command("taskq_purge", "-f")
    assert out.splitlines() == [
        "Purged 1 message(s) from a.",
        "Purged 1 message(s) from b.",
        "Purged 2 message(s) in all.",
    ]


# -- taskq_dead ---------------------------------------------------------------------
def _dead_letter(start_worker: Any, broker: Any, task_id: str) -> str:
    """Make one real dead letter (a task no worker has registered); its entry id."""
    before = broker.xlen(keys.dead("default"))
    publish(Envelope(id=task_id, task="nowhere.ghost", args=[1]))
    with pytest.raises(Exception, match="is not registered"):
        AsyncResult(task_id).get(timeout=15)
    # On Cluster the result can be read a round trip before the dead letter is written.
    wait_dead_letters(broker, before + 1)
    entries = broker.xrange(keys.dead("default"))
    return next(e.decode() for e, f in entries if f[b"i"].decode() == task_id)


def test_taskq_dead_requeue_with_a_bad_id_is_a_clear_error(broker: Any) -> None:
    done = manage("taskq_dead", "--requeue", "nonsense")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "ResponseError" not in done.stderr
    assert done.stderr.strip() == (
        "CommandError: 'nonsense' is not a dead letter's entry id: entry ids look like "
        "1700000000000-0 (the first column of taskq_dead)"
    )


def test_taskq_dead_lists_requeues_and_deletes(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-P", "solo")
    first = _dead_letter(start_worker, broker, "ghost-1")
    second = _dead_letter(start_worker, broker, "ghost-2")
    worker.stop()
    out, _ = command("taskq_dead", "--count", "5")
    assert out.index(second) < out.index(first)  # newest first
    assert "reason: task nowhere.ghost is not registered" in out
    out, err = command("taskq_dead", "--requeue", first, "1-1")
    assert out.strip() == "Requeued 1 dead letter(s)."
    assert "1 of the 2 entry id(s) were not found" in err
    [(_, fields)] = broker.xrange(keys.stream("default", 5))
    assert fields[b"i"] == b"ghost-1" and fields[b"dc"] == b"0" and b"reason" not in fields
    with pytest.raises(CommandError, match="no terminal to confirm on: use --force"):
        command("taskq_dead", "--delete")
    out, _ = command("taskq_dead", "--delete", "-f", "-Q", "default")
    assert out.strip() == "Deleted 1 dead letter(s)."
    assert broker.xlen(keys.dead("default")) == 0


def test_taskq_dead_shows_coded_bodies_decoded_and_refuses_undecodable_requeues(
    broker: Any,
) -> None:
    from django.test import override_settings

    with override_settings(TASKQ_COMPRESSION_MIN_SIZE=0):
        good = Envelope(id="cd-1", task="tests.testapp.tasks.echo", args=[(1, "two")])
        body = good.encode("msgpack", "zlib")
    assert isinstance(body, bytes)
    broker.sadd(keys.queues(), "default")
    fields = {"dc": "1", "reason": "not accepted", "stream": keys.stream("default", 5)}
    first = broker.xadd(keys.dead("default"), {"i": "cd-1", "b": body, **fields}).decode()
    cut = broker.xadd(keys.dead("default"), {"i": "cd-2", "b": body[:-4], **fields}).decode()
    out, _ = command("taskq_dead", "--count", "5")
    assert "task tests.testapp.tasks.echo [msgpack+zlib] args=[(1, 'two')]" in out
    assert "task (unreadable) [msgpack+zlib] args=body cannot be decoded (message body: " in out
    out, err = command("taskq_dead", "--requeue", first, cut)
    assert out.strip() == "Requeued 1 dead letter(s)."
    assert f"Not requeued: {cut}: message body: zlib data is truncated." in err
    [(_, back)] = broker.xrange(keys.stream("default", 5))
    assert back[b"b"] == body
    with pytest.raises(CommandError, match="nothing requeued"):
        command("taskq_dead", "--requeue", cut)
    out, _ = command("taskq_dead", "--requeue", cut, "--force")
    assert out.strip() == "Requeued 1 dead letter(s)."
