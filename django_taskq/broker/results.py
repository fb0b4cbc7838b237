"""Writing result records: forward only, each in its task's slot (store_result.lua).

Every writer of a task's state goes through here: the worker's settle step,
``update_state``, ``revoke()``, the follow-ups that fail tasks downstream.
A record is JSON whose first key is ``status``; store_result.lua refuses to
replace a final state (SUCCESS, FAILURE, REVOKED) with anything but the
outcome a worker reached for a provisional revoke, so states only move
forward, and a task re-run after a crash converges on the stored outcome.
A Django task's record may carry an entry for its attempts list, written
in the same call (attempts.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import redis

from django_taskq import states
from django_taskq.broker import keys, scripts, topology
from django_taskq.broker.connection import get_backend
from django_taskq.conf import taskq_settings
from django_taskq.messages import loads

if TYPE_CHECKING:
    from django_taskq.attempts import Attempt

#: A write: (task id, record, state), and for a Django task the entry its
#: attempts list gets with it (attempts.py; None: none).
Item = tuple[str, str, str] | tuple[str, str, str, "Attempt | None"]


def ttl_ms() -> int:
    """How long records are kept (TASKQ_RESULT_EXPIRES), in milliseconds."""
    return int(float(taskq_settings.RESULT_EXPIRES) * 1000)


def is_final(state: str) -> bool:
    return state in states.READY_STATES


def _args(batch: list[Item]) -> tuple[list[str], list[Any]]:
    names: list[str] = []
    args: list[Any] = [ttl_ms()]
    for item in batch:
        task_id, record, state = item[0], item[1], item[2]
        final = 1 if is_final(state) else 0
        attempt = item[3] if len(item) == 4 else None
        if attempt is None:
            names += keys.result_keys(task_id)
            args += [record, final]
        else:  # flag bit 2: a third key and two more arguments (store_result.lua)
            names += [*keys.result_keys(task_id), keys.attempts(task_id)]
            args += [record, final | 2, attempt.entry, attempt.cap]
    return names, args


def queue_store_many(pipe: Any, client: redis.Redis, items: Iterable[Item]) -> None:
    """Queue forward-only writes of ``(task id, record, state[, attempt])`` items on ``pipe``.

    As few store_result.lua calls as the topology allows (one per batch on
    one Redis, one per slot on Cluster), each a bare EVALSHA: execute the
    pipeline with ``broker.publish.run_pipeline``, which reloads the scripts
    when Redis has lost them.
    """
    for batch in topology.script_batches(client, items, lambda item: keys.result(item[0])):
        names, args = _args(batch)
        scripts.queue_evalsha(pipe, client, "store_result", names, args)


def queue_store(pipe: Any, client: redis.Redis, task_id: str, record: str, state: str) -> None:
    """Queue one forward-only write on ``pipe`` (see ``queue_store_many``)."""
    queue_store_many(pipe, client, [(task_id, record, state)])


def store_many(
    items: Iterable[Item],
    client: redis.Redis | None = None,
    *,
    last_after_the_rest: bool = False,
) -> None:
    """Write ``(task id, record, state)`` items in one round trip (forward only).

    ``last_after_the_rest``: the last item is written only once the others
    are. One Redis writes a pipeline in order anyway; a Cluster pipeline
    writes each node's share at once, so there this costs a second round
    trip. For a failed chain's remaining steps: whoever waits on its last
    step, and is woken by it, then finds every step before it settled.
    """
    from django_taskq.broker import topology
    from django_taskq.broker.publish import run_pipeline

    batch = list(items)
    if not batch:
        return
    target = client or get_backend()

    def build(pipe: Any) -> None:
        if last_after_the_rest and len(batch) > 1:
            queue_store_many(pipe, target, batch[:-1])
            topology.barrier(pipe)
            queue_store_many(pipe, target, batch[-1:])
        else:
            queue_store_many(pipe, target, batch)

    run_pipeline(target, build)


def store(
    task_id: str,
    record: str,
    state: str,
    client: redis.Redis | None = None,
    attempt: Attempt | None = None,
) -> dict[str, Any] | None:
    """Write one record now. Returns None when stored, else the record that was kept.

    The kept record is the final state stored before (by an earlier run of
    the same message, or a worker that got there first); the caller uses it
    to act on the same outcome. ``attempt``: a Django task's attempt entry.
    """
    client = client or get_backend()
    names, args = _args([(task_id, record, state, attempt)])
    reply = scripts.script(client, "store_result")(keys=names, args=args, client=client)
    if reply[0] == 1:
        return None
    try:
        kept: dict[str, Any] = loads(reply[0])
    except Exception:  # a record someone else wrote badly: keep it, say nothing about it
        return {"status": "UNKNOWN", "result": None}
    return kept
