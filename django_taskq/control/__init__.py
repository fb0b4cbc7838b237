"""Operations from outside a worker: queues, dead letters, revoking, and remote control.

Read and act on Redis directly (no worker needed):

- ``inspect()``: queues and online workers at a glance; ``known_queues()``,
  ``unknown_queues(names)``, ``queue_stats(client, queue)``;
- ``purge(queues)`` / ``purge_counts(queues)``: delete waiting messages;
- ``dead_letters(count)``, ``requeue_dead(ids)``, ``delete_dead(ids)``;
  ``requeue_refusals(ids, queue=)``: which would only be dead-lettered again;
- ``revoke(ids, terminate=False)``.

Ask the workers and wait for their replies (``Replies``: each worker's
answer, and who did not reply within the timeout): ``ping``, ``active``,
``reserved``, ``scheduled``, ``registered``, ``stats``, ``query_task``,
``rate_limit``, ``time_limit``, ``shutdown``, ``pool_grow``, ``pool_shrink``,
``add_consumer``, ``cancel_consumer`` (control/operations.py; the protocol is
in control/protocol.py). Bad input raises ``BadRequest`` (a ValueError)
naming it; an unreachable Redis raises ``BrokerUnavailable``.
"""

from __future__ import annotations

from django_taskq.control.dead import (
    DEAD_FIELDS,
    dead_letters,
    delete_dead,
    requeue_dead,
    requeue_refusals,
)
from django_taskq.control.errors import BadRequest
from django_taskq.control.operations import (
    active,
    add_consumer,
    cancel_consumer,
    ping,
    pool_grow,
    pool_shrink,
    query_task,
    rate_limit,
    registered,
    reserved,
    scheduled,
    shutdown,
    stats,
    time_limit,
)
from django_taskq.control.protocol import Reply
from django_taskq.control.queues import (
    inspect,
    known_queues,
    purge,
    purge_counts,
    queue_stats,
    unknown_queues,
    workers,
)
from django_taskq.control.remote import Replies, call
from django_taskq.control.tasks import revoke

__all__ = [
    "DEAD_FIELDS",
    "BadRequest",
    "Replies",
    "Reply",
    "active",
    "add_consumer",
    "call",
    "cancel_consumer",
    "dead_letters",
    "delete_dead",
    "inspect",
    "known_queues",
    "ping",
    "pool_grow",
    "pool_shrink",
    "purge",
    "purge_counts",
    "query_task",
    "queue_stats",
    "rate_limit",
    "registered",
    "requeue_dead",
    "requeue_refusals",
    "reserved",
    "revoke",
    "scheduled",
    "shutdown",
    "stats",
    "time_limit",
    "unknown_queues",
    "workers",
]
