"""Where the Redis topology changes how calls are grouped: slots and order on Cluster.

On Redis Cluster a script may only touch keys of one hash slot, so work for
many tasks (a worker flush storing a batch of results) is split into one
call per slot. On one Redis or Sentinel there is one node and no slot rule,
so the same batch goes in one call: the flush of a 256-message batch is one
EVALSHA instead of 256 (measured in docs/benchmarks.md). And a Cluster
pipeline runs the commands of different nodes in no particular order, so
``barrier()`` marks where order matters. The code that builds the calls is
the same for every topology; only this grouping differs, by the client's
class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

#: Most items one batched call carries (bounds one call's run time in Redis).
BATCH = 256


#: is_cluster() by the client's class: the isinstance() check goes through
#: redis-py's typing protocols, slow enough to show in every ``delay()``.
_CLUSTER_BY_TYPE: dict[type, bool] = {}


def is_cluster(client: Any) -> bool:
    """True for a redis-py Cluster client (or a pipeline of one)."""
    kind = type(client)
    found = _CLUSTER_BY_TYPE.get(kind)
    if found is None:
        from redis.cluster import ClusterPipeline, RedisCluster

        found = _CLUSTER_BY_TYPE[kind] = isinstance(client, RedisCluster | ClusterPipeline)
    return found


def barrier(pipe: Any) -> None:
    """Make what was queued on ``pipe`` so far run before anything queued after.

    One Redis runs a pipeline in order on one connection, so this is a
    no-op there; a Cluster pipeline sends each node its share at once, so
    there it ends one round trip and starts the next (broker/cluster.py).
    The settle step uses it between the results and the acks, so that a
    message is never acked before its result is stored.
    """
    mark = getattr(pipe, "barrier", None)
    if mark is not None:
        mark()


def slot_groups(client: Any, names: Iterable[str]) -> list[list[str]]:
    """``names`` split into groups of one hash slot each, in order of first appearance.

    One group on one Redis or Sentinel, where any keys go together.
    """
    found = list(names)
    if not is_cluster(client):
        return [found] if found else []
    from redis.crc import key_slot

    by_slot: dict[int, list[str]] = {}
    for name in found:
        by_slot.setdefault(key_slot(name.encode()), []).append(name)
    return list(by_slot.values())


def script_batches(client: Any, items: Iterable[T], key_of: Callable[[T], str]) -> list[list[T]]:
    """Split ``items`` into groups one script call may take, at most BATCH each.

    ``key_of(item)`` is a key the item's call touches (every key of one item
    shares its hash tag).
    """
    pending = list(items)
    if not pending:
        return []
    if not is_cluster(client):
        return [pending[i : i + BATCH] for i in range(0, len(pending), BATCH)]
    from redis.crc import key_slot

    by_slot: dict[int, list[T]] = {}
    for item in pending:
        by_slot.setdefault(key_slot(key_of(item).encode()), []).append(item)
    return [group[i : i + BATCH] for group in by_slot.values() for i in range(0, len(group), BATCH)]
