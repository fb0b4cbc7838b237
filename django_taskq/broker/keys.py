"""Names of every Redis key django_taskq uses, in one place, laid out for Redis Cluster.

Every key starts with a hash tag, ``{...}``: Redis Cluster puts keys with the
same tag in the same slot, and a Lua script may only touch keys of one slot.
So each key carries the tag of the thing it belongs to:

- a queue, ``{<prefix>:<queue>}``: its ten priority streams, its delayed
  set, its dead letters, its revoked ids, the once keys of publishes
  into it (delay() retries, workflow follow-ups, beat's runs) and the
  unique keys of unique tasks sent to it;
- a task, ``{<prefix>:<task id>}``: its result record, its waiters set and
  their wake-up lists;
- a workflow, ``{<prefix>:<group id>}``: a chord's finished parts, a saved
  GroupResult;
- a rate-limited task name, ``{<prefix>:rate:<task name>}``;
- everything global, ``{<prefix>}``: the queue registry, workers and their
  heartbeats, beat's lease and versions.

Within one tag the suffixes never overlap (a queue named like a task id
shares its slot, never a key). The same names serve one Redis, Sentinel and
Cluster alike. All keys start with ``TASKQ_KEY_PREFIX`` (default ``taskq``)
inside the tag, so several projects can share one Redis.
"""

from __future__ import annotations

import re

from django_taskq.conf import taskq_settings

GROUP = "taskq"
PRIORITIES = range(9, -1, -1)  # fetch order: 9 runs first

#: What a queue name may hold: it goes inside a hash tag and into key names.
QUEUE_NAME = re.compile(r"^[^{}\s]{1,200}$")


def prefix() -> str:
    return str(taskq_settings.KEY_PREFIX)


def check_queue_name(queue: object, where: str) -> str:
    """``queue`` if it is a usable queue name; ValueError naming ``where`` otherwise."""
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
        raise ValueError(
            f"{where}: queue must be a name of 1-200 characters without whitespace, "
            f"'{{' or '}}', not {queue!r}"
        )
    return queue


# -- global: {<prefix>} -------------------------------------------------------------
def global_key(name: str) -> str:
    """A key of the global tag (beat's lease and versions live here too)."""
    return f"{{{prefix()}}}:{name}"


_global = global_key


def queues() -> str:
    """Set of queue names in use (for recovery, inspect and purge, so nothing needs SCAN)."""
    return _global("queues")


def workers() -> str:
    """Sorted set: worker name -> when it last beat (epoch ms); stale members are pruned."""
    return _global("workers")


def worker_info(name: str) -> str:
    """A worker's description (JSON: host, pid, queues, pool, ...), expiring with its beats."""
    return _global(f"worker:{name}")


def heartbeat(consumer: str) -> str:
    """A consumer is alive while this key exists (TTL under TASKQ_WORKER_HEARTBEAT_TIMEOUT)."""
    return _global(f"hb:{consumer}")


def control() -> str:
    """Pub/sub channel of control requests to workers (revoke(terminate=True), taskq_control)."""
    return _global("control")


def recorder_lease() -> str:
    """Lease of the one history recorder that runs at a time (worker thread or taskq_recorder)."""
    return _global("recorder:lease")


def worker_tasks(name: str) -> str:
    """Set of the task names a worker has registered, expiring with its description."""
    return _global(f"worker:{name}:tasks")


def reply(request_id: str) -> str:
    """List a control request's replies are pushed to (one JSON per worker), short-lived."""
    return _global(f"reply:{request_id}")


def task_limits() -> str:
    """Hash of runtime task limits set by ``taskq_control`` (``rate:<task>``, ``time:<task>``).

    Workers read it at start and when told it changed, so a limit set at
    runtime holds for prefork children spawned later and for workers
    started later too.
    """
    return _global("limits")


def delayed_wake() -> str:
    """Pub/sub channel told (with the queue name) when an earlier ETA enters a delayed set."""
    return _global("delayed:wake")


# -- a queue: {<prefix>:<queue>} ----------------------------------------------------
def queue_tag(queue: str) -> str:
    return f"{{{prefix()}:{queue}}}"


def stream(queue: str, priority: int) -> str:
    """The stream holding ready messages of ``queue`` at ``priority`` (0-9)."""
    return f"{queue_tag(queue)}:q:{priority}"


def queue_streams(queue: str) -> list[str]:
    """The ten streams of one queue, most preferred (priority 9) first."""
    return [stream(queue, p) for p in PRIORITIES]


def streams_for(queues: list[str]) -> list[str]:
    """Streams to read, most preferred first: queue order, then priority 9..0."""
    return [s for q in queues for s in queue_streams(q)]


def queue_of(stream_key: str) -> tuple[str, int]:
    """Inverse of ``stream()``: (queue, priority)."""
    start = len(prefix()) + 2  # "{" + prefix + ":"
    end = stream_key.rindex("}:q:")
    return stream_key[start:end], int(stream_key[end + 4 :])


def delayed(queue: str) -> str:
    """Sorted set of the queue's messages waiting for their ETA, scored by due time (ms)."""
    return f"{queue_tag(queue)}:delayed"


def dead(queue: str) -> str:
    """Stream of the queue's dead-lettered messages, each with its reason."""
    return f"{queue_tag(queue)}:dead"


def revoked(queue: str) -> str:
    """Sorted set: revoked task id -> when the revocation expires (epoch ms).

    revoke() writes it in every known queue, so the fetch script of a queue
    finds it in its own slot.
    """
    return f"{queue_tag(queue)}:revoked"


def once(queue: str, token: str) -> str:
    """Once key of a publish into ``queue``: set in the same step as the publish.

    A delay() retried after a lost reply, a follow-up sent again by a re-run
    task, and a periodic run sent by two beats are each published once.
    """
    return f"{queue_tag(queue)}:once:{token}"


def unique(queue: str, name: str) -> str:
    """Unique key ``name`` of a task sent to ``queue``: holds the id of the task that owns it.

    enqueue.lua sets it with the publish it guards (so uniqueness is per
    queue); unique_release.lua deletes it when that task ends. See unique.py.
    """
    return f"{queue_tag(queue)}:unique:{name}"


def events(queue: str) -> str:
    """Stream of the queue's task events (sent, started, succeeded, ...), capped; see events.py."""
    return f"{queue_tag(queue)}:events"


def metrics(queue: str) -> str:
    """Hash of the queue's task counters and histograms; see metrics/counters.py."""
    return f"{queue_tag(queue)}:metrics"


def throughput(queue: str, minute: int) -> str:
    """Hash of one minute's task endings in the queue (field -> count), kept two hours.

    ``minute`` is epoch seconds // 60. The dashboard reads the last hour.
    """
    return f"{queue_tag(queue)}:tput:{minute}"


# -- a task: {<prefix>:<task id>} ---------------------------------------------------
def task_tag(task_id: str) -> str:
    return f"{{{prefix()}:{task_id}}}"


def result(task_id: str) -> str:
    return f"{task_tag(task_id)}:result"


def waiters(task_id: str) -> str:
    """Set of the wake-up lists of everyone waiting in AsyncResult.get()."""
    return f"{task_tag(task_id)}:waiters"


def wakeup(task_id: str, token: str) -> str:
    """One waiter's list: get() blocks on it; storing a state pushes to it."""
    return f"{task_tag(task_id)}:wake:{token}"


def attempts(task_id: str) -> str:
    """List of a Django task's attempts: who started each, what each failed with.

    Written by store_result.lua with the records of a Django task, read by
    ``TaskqBackend.get_result()`` (django_taskq/attempts.py).
    """
    return f"{task_tag(task_id)}:attempts"


def result_keys(task_id: str) -> list[str]:
    """The keys store_result.lua takes for one record: result, waiters."""
    return [result(task_id), waiters(task_id)]


# -- a workflow: {<prefix>:<group id>} ----------------------------------------------
def group_meta(group_id: str) -> str:
    """A saved GroupResult (its member ids)."""
    return f"{task_tag(group_id)}:group"


def chord_parts(chord_id: str) -> str:
    """Hash of a chord's finished header tasks: index -> outcome (chord_part.lua)."""
    return f"{task_tag(chord_id)}:chord"


# -- a rate-limited task: {<prefix>:rate:<task name>} ------------------------------
def rate_bucket(task_name: str) -> str:
    """Token bucket of a task's rate_limit."""
    return f"{{{prefix()}:rate:{task_name}}}:bucket"
