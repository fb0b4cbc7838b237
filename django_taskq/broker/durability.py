"""Opt-in: a write counts as done only once replicas have it (``TASKQ_BROKER_MIN_REPLICAS``).

Redis replicates asynchronously: a master acknowledges a write before its
replicas have it, so a master that dies in that moment takes the write
with it, and the replica that replaces it never saw it (a task that
``delay()`` returned for, a retry a worker published). The window is short
(on one machine the fault tests lost 2 tasks in 3 Sentinel failovers under
load, each sent within a millisecond of the kill), but it is there.

With ``TASKQ_BROKER_MIN_REPLICAS = N`` every pipeline that django_taskq
sends through ``run_pipeline`` (sends, worker flushes, beat's runs) ends
with ``WAIT N <timeout>`` on each connection it wrote on, in the same round
trip: Redis answers it once N replicas have everything written before it.
If fewer did within ``TASKQ_BROKER_REPLICA_TIMEOUT``, ``ReplicasBehind``
(a ``redis.ConnectionError``) is raised, so the send is retried with its
once key and, if that does not help in time, ends in ``BrokerUnavailable``
saying the task was perhaps sent; a worker keeps its flush and sends it
again. The cost is the replicas' acknowledgement (on a LAN, well under a
millisecond) on every such round trip; nothing else changes.

On Cluster, a pipeline writes on one connection per node, so each node
touched gets its own WAIT (broker/cluster.py); the stretches between
barriers each get theirs.
"""

from __future__ import annotations

from typing import Any

import redis

from django_taskq.conf import taskq_settings


class ReplicasBehind(redis.ConnectionError):
    """Fewer replicas than TASKQ_BROKER_MIN_REPLICAS acknowledged a write in time."""


def wanted() -> tuple[int, int]:
    """(replicas to wait for, timeout in ms); (0, 0) when nothing is to be waited for."""
    replicas = int(getattr(taskq_settings, "BROKER_MIN_REPLICAS", 0) or 0)
    if replicas <= 0:
        return 0, 0
    timeout = float(getattr(taskq_settings, "BROKER_REPLICA_TIMEOUT", 1.0) or 1.0)
    return replicas, max(1, int(timeout * 1000))


def request(pipe: Any, replicas: int, timeout_ms: int) -> bool:
    """Ask ``pipe`` to wait for ``replicas`` at its end; True if a WAIT reply ends the replies.

    A Cluster pipeline places its WAITs itself and checks their replies.
    """
    per_node = getattr(pipe, "wait_for_replicas", None)
    if per_node is not None:
        per_node(replicas, timeout_ms)
        return False
    pipe.execute_command("WAIT", replicas, timeout_ms)
    return True


def check(acknowledged: Any, replicas: int, timeout_ms: int, where: str = "Redis") -> None:
    """Raise ReplicasBehind unless ``acknowledged`` (a WAIT reply) is at least ``replicas``."""
    if isinstance(acknowledged, int) and acknowledged >= replicas:
        return
    got = acknowledged if isinstance(acknowledged, int) else f"an error ({acknowledged})"
    raise ReplicasBehind(
        f"{where}: {got} replica(s) acknowledged the write within {timeout_ms} ms, "
        f"TASKQ_BROKER_MIN_REPLICAS={replicas} wanted; it is on the master and may be lost "
        "if the master fails before they catch up"
    )


__all__ = ["ReplicasBehind", "check", "request", "wanted"]
