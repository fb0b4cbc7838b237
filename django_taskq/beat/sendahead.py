"""The Redis side of runs sent ahead: promote them when due, record them, take them back.

- ``promote_queues``: at a due instant the leader promotes the queues that
  hold runs due then (workers of those queues do the same: whoever runs
  promote.lua first moves them, each exactly once). Bounded, so a huge
  backlog of other delayed messages cannot hold the leader for long. On
  Redis Cluster the queues are promoted at the same time, one thread each
  (up to PARALLEL), since their slots may be on different masters; on one
  Redis that would gain nothing, so they go one after another.
- ``record_sent``: once due, runs are facts; ``beat:last`` gets their due
  times (a new leader reads it), as for runs sent when due.
- ``withdraw``: runs of a periodic task that changed (edit, disable,
  delete) before they were due are taken back: withdraw.lua removes the
  message and its once key together, per (queue, due millisecond), and
  writes a ``revoked`` event for each (TASKQ_EVENTS).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import redis

from django_taskq.beat.ahead import AheadRun
from django_taskq.beat.dispatch import last_key, run_key
from django_taskq.beat.scripts import script
from django_taskq.broker import delayed, keys
from django_taskq.broker.topology import is_cluster
from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.beat")

#: promote() rounds (each of delayed.PROMOTE_CALLS calls) the leader spends on
#: one queue at a due instant; workers of the queue move anything left.
PROMOTE_ROUNDS = 4
#: Most runs withdrawn by one withdraw.lua call, and recorded by one HSET.
CHUNK = 500
#: Most queues promoted at the same time on Redis Cluster.
PARALLEL = 8

_pool: ThreadPoolExecutor | None = None


def promote_queues(client: redis.Redis, queues: Iterable[str]) -> set[str]:
    """Promote each queue's due delayed messages; returns the queues with some left."""
    names = sorted(queues)
    if len(names) > 1 and is_cluster(client):
        global _pool
        if _pool is None:
            _pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="taskq-beat-promote")
        done = list(_pool.map(lambda queue: _promote_one(client, queue), names))
    else:
        done = [_promote_one(client, queue) for queue in names]
    return {queue for queue, finished in zip(names, done, strict=True) if not finished}


def _promote_one(client: redis.Redis, queue: str) -> bool:
    """Promote one queue for up to PROMOTE_ROUNDS rounds; False if a backlog is left."""
    for _ in range(PROMOTE_ROUNDS):
        backlog, _next = delayed.promote(client, queue)
        if not backlog:
            return True
    return False


def record_sent(client: redis.Redis, runs: list[AheadRun]) -> None:
    """Write the due times of runs that have come due into ``beat:last`` (latest per task)."""
    latest: dict[int, int] = {}
    for run in runs:
        latest[run.entry_id] = max(latest.get(run.entry_id, 0), run.due_ms)
    items = [(str(entry_id), due_ms) for entry_id, due_ms in latest.items()]
    if not items:
        return
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(items), CHUNK):
        pipe.hset(last_key(), mapping=dict(items[start : start + CHUNK]))
    pipe.execute()


def withdraw(client: redis.Redis, runs: list[AheadRun]) -> list[bool]:
    """Take back runs queued ahead; for each, True if it was withdrawn.

    False means its message was not in the delayed set any more: its due
    time came and it was promoted (or it went to its stream directly), so
    it counts as sent and its once key stays.
    """
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for index, run in enumerate(runs):
        groups[(run.queue, run.due_ms)].append(index)
    outcome = [False] * len(runs)
    withdraw_script = script(client, "withdraw")
    cap = str(int(taskq_settings.EVENTS_MAXLEN)) if taskq_settings.EVENTS else ""
    now_ms = int(time.time() * 1000)
    for (queue, due_ms), indexes in groups.items():
        for start in range(0, len(indexes), CHUNK):
            chunk = indexes[start : start + CHUNK]
            once_keys = [run_key(runs[i].entry_id, runs[i].due, queue) for i in chunk]
            replies = withdraw_script(
                keys=[keys.delayed(queue), keys.events(queue), *once_keys],
                args=[due_ms, cap, now_ms, *[runs[i].task_id for i in chunk]],
                client=client,
            )
            for i, reply in zip(chunk, replies, strict=True):
                outcome[i] = bool(reply)
    return outcome
