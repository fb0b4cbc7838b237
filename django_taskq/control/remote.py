"""Asking workers and waiting for their replies (the caller's side of control/protocol.py).

``call()`` publishes a request and blocks on its reply list (BLPOP, never a
sleep loop) until every expected worker has answered or the timeout passes.
Expected are the workers online now (their last heartbeat is within
TASKQ_WORKER_HEARTBEAT_TIMEOUT), or, with a destination, the online workers
it names, by hostname or full name. A name that matches no online worker is
expected too, under that name, so a typo or a stopped worker is reported as
not replying instead of being silently skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.conf import taskq_settings
from django_taskq.control.errors import BadRequest
from django_taskq.control.protocol import Reply, Request

#: Longest single BLPOP: well under the connection's socket timeout.
BLOCK_SLICE = 2.0
#: How long a reply list outlives the caller's timeout (for replies that come late).
REPLY_GRACE = 10.0

Destination = str | Iterable[str] | None


@dataclass(frozen=True)
class Replies:
    """What the workers answered to one request, and who did not answer in time."""

    op: str
    replies: list[Reply]  # in the order they arrived
    missing: list[str]  # expected workers (or destinations) that did not reply
    timeout: float

    @property
    def ok(self) -> bool:
        """True when every expected worker replied, and none with an error."""
        return not self.missing and all(r.ok for r in self.replies)

    def results(self) -> dict[str, Any]:
        """hostname -> result of each worker that replied without an error.

        Keyed by full worker name instead when two replies share a hostname.
        """
        good = [r for r in self.replies if r.ok]
        hosts = [r.hostname for r in good]
        return {(r.hostname if hosts.count(r.hostname) == 1 else r.worker): r.result for r in good}

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output (``--json``)."""
        return {
            "op": self.op,
            "replies": {
                r.worker: (
                    {"hostname": r.hostname, "ok": True, "result": r.result}
                    if r.ok
                    else {"hostname": r.hostname, "ok": False, "error": r.error}
                )
                for r in self.replies
            },
            "no_reply": list(self.missing),
            "timeout": self.timeout,
        }


def destinations(destination: Destination) -> tuple[str, ...] | None:
    """``destination`` as the protocol's tuple of names (None: every worker)."""
    if destination is None:
        return None
    names = (destination,) if isinstance(destination, str) else tuple(destination)
    names = tuple(n.strip() for n in names if n and n.strip())
    if not names:
        raise BadRequest("destination names no worker: give a worker's hostname, or None for all")
    return names


@translating_errors("send a control request to the workers")
def call(
    op: str,
    args: dict[str, Any] | None = None,
    *,
    destination: Destination = None,
    timeout: float | None = None,
) -> Replies:
    """Send ``op`` to the workers and wait up to ``timeout`` seconds for their replies."""
    wait = float(taskq_settings.CONTROL_TIMEOUT if timeout is None else timeout)
    if wait <= 0:
        raise BadRequest(f"timeout must be a positive number of seconds, not {timeout!r}")
    names = destinations(destination)
    client: Any = get_broker()
    expected = _expected(client, names)
    request = Request.new(op, args, names, int((wait + REPLY_GRACE) * 1000))
    client.publish(keys.control(), request.encode())
    replies: list[Reply] = []
    waiting = set(expected)
    deadline = time.monotonic() + wait
    try:
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            item = client.blpop([request.reply_key], timeout=max(min(left, BLOCK_SLICE), 0.01))
            reply = Reply.decode(item[1]) if item is not None else None
            if reply is None or any(r.worker == reply.worker for r in replies):
                continue
            replies.append(reply)
            # A destination given by hostname that matched no online worker
            # when we looked is answered by a worker that came online since.
            waiting.discard(reply.worker)
            waiting.discard(reply.hostname)
    finally:
        client.delete(request.reply_key)
    return Replies(op, replies, sorted(waiting), wait)


def _expected(client: Any, names: tuple[str, ...] | None) -> list[str]:
    """Who must reply: the online workers' names, or the destinations' (matched or not)."""
    from django_taskq.monitor.workers import read_states

    online = read_states(client, include_offline=False)
    if names is None:
        return [w.name for w in online]
    expected: list[str] = []
    for name in names:
        matched = [w.name for w in online if name in (w.name, w.hostname)]
        expected += matched or [name]
    return list(dict.fromkeys(expected))
