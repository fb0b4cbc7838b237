"""The remote-control protocol: requests to workers over pub/sub, replies on a list.

A request is one PUBLISH on ``{<p>}:control`` (the channel every worker's
housekeeping thread listens on)::

    {"op": "ping", "id": "<32 hex>", "destination": ["taskq@web1", ...] or null,
     "args": {...}, "reply_ttl": <ms>}

A worker the request is addressed to (all of them when ``destination`` is
null, else those whose hostname or full name is listed) carries it out and
pushes one JSON reply onto ``{<p>}:reply:<id>``, setting that list's expiry
to ``reply_ttl`` in the same MULTI::

    {"worker": "<name>", "hostname": "<hostname>", "ok": true, "result": ...}
    {"worker": "<name>", "hostname": "<hostname>", "ok": false, "error": "..."}

The caller blocks on the list (BLPOP) until every worker it expects has
replied or its timeout passes, then deletes the list; the expiry cleans up
after replies that came too late. Pub/sub delivers to whoever listens at that
moment and keeps nothing, so a worker that is starting or reconnecting
misses the request, and the caller reports it as not replying: that is
what the operator needs to know. A message without an id (``revoke(terminate=True)``)
asks for no reply. The reply list's name is made from the id by each side,
never taken from the message, so a request cannot make a worker write
another key.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from django_taskq.broker import keys

#: Operations that only read (``taskq_inspect``).
INSPECT_OPS = ("ping", "active", "reserved", "scheduled", "registered", "stats", "query_task")
#: Operations that change a worker (``taskq_control``).
CONTROL_OPS = (
    "rate_limit",
    "time_limit",
    "shutdown",
    "pool_grow",
    "pool_shrink",
    "add_consumer",
    "cancel_consumer",
)
#: What a request id looks like (made by ``Request.new``).
REQUEST_ID = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class Request:
    """One control request, as published and as a worker reads it."""

    op: str
    id: str
    destination: tuple[str, ...] | None
    args: dict[str, Any] = field(default_factory=dict)
    reply_ttl_ms: int = 60_000

    @classmethod
    def new(
        cls,
        op: str,
        args: dict[str, Any] | None,
        destination: tuple[str, ...] | None,
        reply_ttl_ms: int,
    ) -> Request:
        return cls(op, secrets.token_hex(16), destination, dict(args or {}), reply_ttl_ms)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Request | None:
        """The request in a control message; None for one that asks for no reply."""
        request_id = payload.get("id")
        op = payload.get("op")
        if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
            return None
        if not isinstance(op, str):
            return None
        raw_destination = payload.get("destination")
        destination = (
            tuple(str(d) for d in raw_destination) if isinstance(raw_destination, list) else None
        )
        args = payload.get("args")
        ttl = payload.get("reply_ttl")
        return cls(
            op=op,
            id=request_id,
            destination=destination,
            args=args if isinstance(args, dict) else {},
            reply_ttl_ms=int(ttl) if isinstance(ttl, int) and ttl > 0 else 60_000,
        )

    def encode(self) -> str:
        return json.dumps(
            {
                "op": self.op,
                "id": self.id,
                "destination": list(self.destination) if self.destination is not None else None,
                "args": self.args,
                "reply_ttl": self.reply_ttl_ms,
            }
        )

    @property
    def reply_key(self) -> str:
        return keys.reply(self.id)

    def addressed_to(self, name: str, hostname: str) -> bool:
        """True if the worker called ``name`` (hostname ``hostname``) must answer."""
        return self.destination is None or name in self.destination or hostname in self.destination


@dataclass(frozen=True)
class Reply:
    """One worker's answer to a request."""

    worker: str  # the worker's unique name
    hostname: str
    ok: bool
    result: Any = None
    error: str | None = None

    def encode(self) -> str:
        data: dict[str, Any] = {"worker": self.worker, "hostname": self.hostname, "ok": self.ok}
        if self.ok:
            data["result"] = self.result
        else:
            data["error"] = self.error
        return json.dumps(data, default=str)

    @classmethod
    def decode(cls, raw: bytes | str) -> Reply | None:
        """The reply in ``raw``; None for anything that is not one."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("worker"), str):
            return None
        return cls(
            worker=data["worker"],
            hostname=str(data.get("hostname") or data["worker"]),
            ok=bool(data.get("ok")),
            result=data.get("result"),
            error=None if data.get("ok") else str(data.get("error") or "failed"),
        )


def send_reply(client: Any, request: Request, reply: Reply) -> None:
    """Push ``reply`` onto the request's reply list and renew the list's expiry, atomically."""
    pipe = client.pipeline(transaction=True)
    pipe.rpush(request.reply_key, reply.encode())
    pipe.pexpire(request.reply_key, request.reply_ttl_ms)
    pipe.execute()
