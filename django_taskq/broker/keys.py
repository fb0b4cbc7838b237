"""Names of every Redis key django_taskq uses, in one place.

All keys start with ``TASKQ_KEY_PREFIX`` (default ``taskq``) so that several
projects can share one Redis. Queue and priority pairs map to one stream each;
all streams share one consumer group, ``GROUP``.
"""

from __future__ import annotations

from django_taskq.conf import taskq_settings

GROUP = "taskq"
PRIORITIES = range(9, -1, -1)  # fetch order: 9 runs first


def prefix() -> str:
    return str(taskq_settings.KEY_PREFIX)


def stream(queue: str, priority: int) -> str:
    """The stream holding ready messages of ``queue`` at ``priority`` (0-9)."""
    return f"{prefix()}:q:{queue}:{priority}"


def streams_for(queues: list[str]) -> list[str]:
    """Streams to read, most preferred first: queue order, then priority 9..0."""
    return [stream(q, p) for q in queues for p in PRIORITIES]


def queue_of(stream_key: str) -> tuple[str, int]:
    """Inverse of ``stream()``: (queue, priority)."""
    rest = stream_key[len(prefix()) + 3 :]
    queue, _, priority = rest.rpartition(":")
    return queue, int(priority)


def queues() -> str:
    """Set of every queue name ever published to (for inspect and purge)."""
    return f"{prefix()}:queues"


def delayed() -> str:
    """Sorted set of messages waiting for their ETA, scored by due time (ms)."""
    return f"{prefix()}:delayed"


def delayed_wake() -> str:
    """Pub/sub channel told when an earlier ETA enters the delayed set."""
    return f"{prefix()}:delayed:wake"


def result(task_id: str) -> str:
    return f"{prefix()}:r:{task_id}"


def waiters(task_id: str) -> str:
    """Set of the wake-up lists of everyone waiting in AsyncResult.get()."""
    return f"{prefix()}:w:{task_id}"


def wakeup(task_id: str, token: str) -> str:
    """One waiter's list: get() blocks on it; storing a state pushes to it."""
    return f"{prefix()}:n:{task_id}:{token}"


def result_keys(task_id: str) -> list[str]:
    """The keys store_result.lua takes for one record: result, waiters."""
    return [result(task_id), waiters(task_id)]


def revoked(task_id: str) -> str:
    return f"{prefix()}:revoked:{task_id}"


def heartbeat(consumer: str) -> str:
    return f"{prefix()}:hb:{consumer}"


def workers() -> str:
    """Hash consumer -> JSON description (host, pid, queues, started)."""
    return f"{prefix()}:workers"


def dead() -> str:
    """Stream of dead-lettered messages with their reason."""
    return f"{prefix()}:dead"


def control() -> str:
    """Pub/sub channel for revoke(terminate=True) and other broadcasts."""
    return f"{prefix()}:control"


def group_meta(group_id: str) -> str:
    return f"{prefix()}:g:{group_id}"


def chord_parts(chord_id: str) -> str:
    """Hash of a chord's finished header tasks: index -> outcome (chord_part.lua)."""
    return f"{prefix()}:chord:{chord_id}"


def followup_sent(task_id: str) -> str:
    """Once key of a workflow follow-up: set when its message is published.

    A worker that re-runs a finished task after a crash publishes the same
    follow-ups again; this key (set in the same step as the publish) drops
    the duplicates.
    """
    return f"{prefix()}:sent:{task_id}"
