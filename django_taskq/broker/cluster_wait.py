"""A blocking read on streams of several hash slots at once (Redis Cluster), on one thread.

One ``XREADGROUP ... BLOCK`` may only name streams of one slot on Cluster,
and a worker consuming queues ``a`` and ``b`` has streams in two slots. So
``read_any`` sends one blocking read per slot, each on its own connection
to the node that serves the slot, and waits on all their sockets at once
(``selectors``): the first reply wakes it, without polling. The reads still
blocked are then cancelled with ``CLIENT UNBLOCK <id> TIMEOUT``, which ends
them as if their time had run out, so they take nothing; a read that Redis
served in the same instant comes back with its entries, which are kept.
When ``read_any`` returns, no read is left outstanding, so no message is
delivered to a consumer that is busy elsewhere or has stopped.

If the Redis user may not run ``CLIENT UNBLOCK`` (an ACL without
``+client|unblock``), the other reads are left to end by themselves:
nothing is lost, but a wake-up can wait up to the block time. That is
logged once.
"""

from __future__ import annotations

import logging
import selectors
from dataclasses import dataclass
from typing import Any

import redis

logger = logging.getLogger("django_taskq.worker")

#: Seconds past the block time after which a read that never answered is a lost connection.
MARGIN = 2.0
_unblock_refused = False


@dataclass
class _Read:
    """One blocking read in flight: its node, connection and client id."""

    streams: list[str]
    node: Any  # the node's redis.Redis
    connection: Any
    client_id: int | None = None
    sent: bool = False
    done: bool = False
    reply: Any = None


def _client_id(connection: Any) -> int | None:
    """CLIENT ID of ``connection`` (asked once per socket)."""
    sock = getattr(connection, "_sock", None)
    cached = getattr(connection, "_taskq_client_id", None)
    if cached is not None and cached[0] is sock:
        return int(cached[1])
    try:
        connection.send_command("CLIENT", "ID")
        found = int(connection.read_response())
    except redis.ResponseError:  # an ACL without +client|id
        return None
    connection._taskq_client_id = (connection._sock, found)
    return found


def read_any(
    client: Any, groups: list[list[str]], group: str, consumer: str, count: int, block_ms: int
) -> list[Any]:
    """Block up to ``block_ms`` for new entries on any of ``groups`` (streams of one slot each).

    Returns an XREADGROUP reply, ``[[stream, [(id, fields), ...]], ...]``,
    merged over the slots that had entries. Raises ``redis.ConnectionError``
    (or ``TimeoutError``) if a read's connection failed; the caller then
    reads back what it holds, as after any lost connection.
    """
    reads: list[_Read] = []
    try:
        for streams in groups:
            node = client.get_redis_connection(client.get_node_from_key(streams[0]))
            connection = node.connection_pool.get_connection()
            reads.append(_Read(streams, node, connection))
            reads[-1].client_id = _client_id(connection)
            connection.send_command(
                "XREADGROUP", "GROUP", group, consumer, "COUNT", count, "BLOCK", block_ms,
                "STREAMS", *streams, *([">"] * len(streams)),
            )  # fmt: skip
            reads[-1].sent = True
        _wait_first(reads, block_ms / 1000 + MARGIN)
        _cancel_rest(reads, block_ms)
        out: list[Any] = []
        for read in reads:
            if read.reply:
                out.extend(read.reply)
        return out
    finally:
        for read in reads:
            if read.sent and not read.done:
                read.connection.disconnect()  # its reply was never read
            read.node.connection_pool.release(read.connection)


def _finish(read: _Read) -> None:
    """Read the reply of ``read`` (which has arrived or is about to)."""
    try:
        read.reply = read.node.parse_response(read.connection, "XREADGROUP")
    except (redis.exceptions.MovedError, redis.exceptions.AskError):
        # The slot moved (a reshard): nothing was read there. The caller's
        # next non-blocking fetch follows the redirect and refreshes the map
        # (while the slot is still being moved, ASK repeats: for the
        # milliseconds its keys take to move).
        read.reply = None
    read.done = True


def _wait_first(reads: list[_Read], timeout: float) -> None:
    with selectors.DefaultSelector() as selector:
        for read in reads:
            selector.register(read.connection._sock, selectors.EVENT_READ, read)
        ready = selector.select(timeout)
    if not ready:
        raise redis.TimeoutError(
            f"no reply to a blocking read on Redis Cluster within {timeout:.1f}s"
        )
    for key, _ in ready:
        _finish(key.data)


def _cancel_rest(reads: list[_Read], block_ms: int) -> None:
    """End the reads still blocked (CLIENT UNBLOCK ... TIMEOUT), then take their replies."""
    global _unblock_refused
    for read in reads:
        if read.done:
            continue
        if read.client_id is not None and not _unblock_refused:
            try:
                read.node.client_unblock(read.client_id)
            except redis.ResponseError as exc:
                if "NOPERM" not in str(exc):
                    raise
                _unblock_refused = True
                logger.warning(
                    "the Redis user may not run CLIENT UNBLOCK (%s): a worker consuming queues "
                    "in several Cluster slots may wake up to %.0f ms late; allow +client|unblock",
                    exc,
                    block_ms,
                )
        _finish(read)


__all__ = ["read_any"]
