"""Which Redis topology the test session runs on (TASKQ_TEST_TOPOLOGY), for tests that care.

``single_redis_only`` skips a test that looks at single-Redis internals
(a connection pool, one script call for any keys) when the session runs on
a Redis Cluster or a Sentinel master.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

TOPOLOGY = os.environ.get("TASKQ_TEST_TOPOLOGY", "single") or "single"

single_redis_only = pytest.mark.skipif(
    TOPOLOGY != "single", reason=f"looks at single-Redis internals (topology: {TOPOLOGY})"
)


def drop_client_connections(client: Any) -> int:
    """Close every normal client connection on every primary (as a network blip would).

    Returns how many were closed; the caller's own connection is spared.
    """
    from django_taskq.broker.topology import is_cluster

    if not is_cluster(client):
        return int(client.client_kill_filter(_type="normal", skipme=True))
    closed = 0
    for node in client.get_primaries():
        closed += int(
            client.client_kill_filter(_type="normal", skipme=True, target_nodes=node) or 0
        )
    return closed


def stream_entries(reply: Any) -> list[Any]:
    """The entries of the one stream in an XREADGROUP reply (a dict in a Cluster MULTI)."""
    if isinstance(reply, dict):
        [entries] = reply.values()
        return list(entries)
    return list(reply[0][1])
