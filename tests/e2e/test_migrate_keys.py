"""A 0.1 deployment upgraded in place: taskq_migrate_keys moves its keys, a worker runs them."""

from __future__ import annotations

import json
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_taskq import AsyncResult, states
from django_taskq.broker import keys
from tests.testapp.tasks import add

pytestmark = pytest.mark.e2e


def _old_layout(broker: Any) -> dict[str, str]:
    """Keys as django_taskq 0.1 wrote them: a ready, a pending, a delayed and a dead message."""
    ready = add.build_envelope((1, 2), task_id="ready")
    held = add.build_envelope((3, 4), task_id="held")
    later = add.build_envelope((5, 6), task_id="later", priority=7)
    broker.sadd("taskq:queues", "default")
    stream = "taskq:q:default:5"
    broker.xgroup_create(stream, "taskq", id="0", mkstream=True)
    broker.xadd(stream, {"i": "held", "b": held.encode(), "dc": 0})
    # A worker of 0.1 fetched "held" and died: it stays pending in the group.
    broker.xreadgroup("taskq", "old-host:1:0", {stream: ">"}, count=1)
    broker.xadd(stream, {"i": "ready", "b": ready.encode(), "dc": 0})
    due = int((time.time() + 0.5) * 1000)
    broker.zadd("taskq:delayed", {f"taskq:q:default:7\nlater\n{later.encode()}": due})
    broker.xadd("taskq:dead", {"i": "x", "b": "{}", "reason": "old", "stream": stream})
    broker.set("taskq:r:done", json.dumps({"status": "SUCCESS", "result": 9}), px=60_000)
    broker.set("taskq:revoked:gone", 1, px=60_000)
    broker.set("taskq:hb:old-host:1:0", 1, px=60_000)
    return {"ready": "ready", "held": "held", "later": "later"}


def test_keys_of_0_1_are_moved_and_run(start_worker: Any, broker: Any) -> None:
    _old_layout(broker)
    with pytest.raises(CommandError, match="live heartbeat"):
        call_command("taskq_migrate_keys")
    broker.delete("taskq:hb:old-host:1:0")  # the old worker is stopped now
    out = StringIO()
    call_command("taskq_migrate_keys", "--dry-run", stdout=out)
    assert "messages: 2" in out.getvalue() and broker.exists("taskq:q:default:5")
    out = StringIO()
    call_command("taskq_migrate_keys", stdout=out)
    text = out.getvalue()
    assert "messages: 2" in text and "delayed messages: 1" in text and "dead letters: 1" in text
    assert not broker.keys("taskq:*"), broker.keys("taskq:*")
    held = [f for _, f in broker.xrange(keys.stream("default", 5)) if f[b"i"] == b"held"]
    assert held[0][b"dc"] == b"1"  # it was left unfinished: one delivery counted
    assert broker.zscore(keys.revoked("default"), "gone")
    assert AsyncResult("done").get(timeout=1) == 9
    start_worker("-P", "solo")
    assert AsyncResult("ready").get(timeout=10) == 3
    assert AsyncResult("held").get(timeout=10) == 7
    assert AsyncResult("later").get(timeout=10) == 11
    assert AsyncResult("later").state == states.SUCCESS
    assert broker.xlen(keys.dead("default")) == 1
    # Running it again changes nothing.
    out = StringIO()
    call_command("taskq_migrate_keys", stdout=out)
    assert "messages: 0" in out.getvalue()
