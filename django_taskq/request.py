"""``Request``: what a running task knows about its own call (``self.request``).

One stack holds the requests of the calls running in this context (a
worker's task, or an eager call nested in it). ``current_request()`` is its
top; ``Task.request`` is the top when it belongs to that task. The stack is
a context variable, not a thread-local: each thread has a context of its
own, and so does each asyncio task, which copies its creator's context. So
the ``async def`` tasks a consumer runs at once on its one loop (its async
lane, worker/lane.py) each see their own request, and code that
``sync_to_async`` runs on a thread for them sees it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django_taskq.messages import Envelope


@dataclass
class Request:
    """What a running task knows about its own call (``self.request``)."""

    id: str | None = None
    task: str = ""
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: float | None = None
    expires: float | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    group_index: int | None = None
    hostname: str | None = None
    delivery_count: int = 1
    headers: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    is_eager: bool = False
    called_directly: bool = True
    ignore_result: bool = False
    time_limit: float | None = None
    soft_time_limit: float | None = None
    link: list[dict[str, Any]] = field(default_factory=list)
    link_error: list[dict[str, Any]] = field(default_factory=list)
    chord: dict[str, Any] | None = None
    #: When the message was sent (epoch seconds; None when called directly).
    sent_at: float | None = None
    #: Ids of the tasks this call sent (``AsyncResult.children``); None: none yet.
    children: list[str] | None = None

    @classmethod
    def from_envelope(
        cls, envelope: Envelope, *, hostname: str | None, delivery_count: int, eager: bool
    ) -> Request:
        return cls(
            id=envelope.id,
            task=envelope.task,
            args=envelope.args,
            kwargs=envelope.kwargs,
            retries=envelope.retries,
            eta=envelope.eta,
            expires=envelope.expires,
            root_id=envelope.root_id or envelope.id,
            parent_id=envelope.parent_id,
            group_id=envelope.group_id,
            group_index=envelope.group_index,
            hostname=hostname,
            delivery_count=delivery_count,
            headers=envelope.headers,
            queue=envelope.queue,
            priority=envelope.priority,
            is_eager=eager,
            called_directly=False,
            ignore_result=envelope.ignore_result,
            time_limit=envelope.time_limit,
            soft_time_limit=envelope.soft_time_limit,
            link=envelope.link,
            link_error=envelope.link_error,
            chord=envelope.chord,
            sent_at=envelope.sent_at,
        )


#: The running calls, innermost last. A tuple: a push or pop sets a new one,
#: so a copied context (an asyncio task's) never sees its creator's changes.
_stack: ContextVar[tuple[Request, ...]] = ContextVar("taskq_requests", default=())


def current_request() -> Request | None:
    """The request of the innermost task call running in this context, if any."""
    stack = _stack.get()
    return stack[-1] if stack else None


def push(request: Request) -> None:
    """Make ``request`` the current one (until the matching ``pop()``)."""
    _stack.set((*_stack.get(), request))


def pop() -> None:
    """End the current request."""
    _stack.set(_stack.get()[:-1])


def unwind() -> None:
    """Forget every request of this context.

    For a worker's consumer, which runs one task at a time: a run stopped
    by revoke(terminate=True) between its ``push()`` and its ``pop()``
    must not leave its request current for the next task.
    """
    _stack.set(())


@contextmanager
def activated(request: Request) -> Iterator[Request]:
    """``request`` is the current request within the block."""
    push(request)
    try:
        yield request
    finally:
        pop()
