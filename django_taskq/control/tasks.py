"""Revoking tasks from outside a worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from django_taskq import states
from django_taskq.broker import keys, results
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.conf import taskq_settings
from django_taskq.control.queues import known_queues
from django_taskq.messages import dumps


@translating_errors("revoke tasks", uses="both")
def revoke(task_ids: Iterable[str], terminate: bool = False, signal: str = "SIGKILL") -> None:
    """Mark tasks revoked: a worker that receives one skips it (state REVOKED).

    The revocation is written into every known queue (so each queue's fetch
    finds it in its own slot) for TASKQ_RESULT_EXPIRES. A task's result
    becomes REVOKED unless it has finished already: a finished result is
    left alone. The REVOKED record is provisional: if the task was running
    (and not terminated), the outcome it reaches replaces it. With
    ``terminate=True`` a running one is stopped and ends REVOKED, by the
    means each pool allows (worker/terminate.py): a prefork worker sends
    ``signal`` to the child running it (SIGKILL by default; SIGTERM and
    SIGINT raise Terminated in the task so its cleanup runs); the solo and
    threads pools raise Terminated in the thread that runs it.
    """
    ids = [str(i) for i in task_ids]
    if terminate:
        from django_taskq.worker.terminate import signal_name

        signal = signal_name(signal)  # ValueError naming a signal that does not exist
    if not ids:
        return
    ttl = results.ttl_ms()
    now_ms = int(time.time() * 1000)
    client = get_broker()
    queues = sorted(set(known_queues()) | {str(taskq_settings.DEFAULT_QUEUE)})
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zadd(keys.revoked(queue), {task_id: now_ms + ttl for task_id in ids})
        pipe.zremrangebyscore(keys.revoked(queue), "-inf", now_ms)
    if terminate:
        pipe.publish(
            keys.control(),
            json.dumps({"op": "revoke", "ids": ids, "terminate": True, "signal": signal}),
        )
    pipe.execute()
    record = dumps(
        {
            "status": states.REVOKED,
            "result": {
                "exc_type": "django_taskq.exceptions.TaskRevokedError",
                "exc_message": "revoked",
                "exc_args": ["revoked"],
            },
            "traceback": None,
            "date_done": time.time(),
            "reason": "revoke() was called",
            "provisional": True,
        }
    )
    # Not a final write: a finished task keeps its result.
    results.store_many((task_id, record, states.STARTED) for task_id in ids)
