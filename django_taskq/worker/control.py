"""A worker's side of remote control: carry out a request addressed to it, and reply.

Requests arrive on the housekeeping thread (worker/maintenance.py listens on
the control channel); the protocol is in control/protocol.py. Reads
(``active``, ``reserved``, ...) are answered from this thread; changes to the
prefork pool are carried out by the supervising thread (``PreforkPool.submit``)
and this thread waits for them, so the reply says what was done, and the
worker's description is rewritten before the reply, so whoever reads the
worker state after the reply sees the change. ``shutdown`` replies first and
stops after. A request that fails gets a reply saying why; nothing here can
end the housekeeping thread.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django_taskq.broker import keys
from django_taskq.broker.connection import broker_url, get_broker, redact
from django_taskq.control.protocol import Reply, Request, send_reply
from django_taskq.registry import registry
from django_taskq.worker import inspection
from django_taskq.worker.consumer import BLOCK_MS

if TYPE_CHECKING:
    from django_taskq.worker.main import Worker

logger = logging.getLogger("django_taskq.worker")

#: Longest wait for the supervising thread to carry out a pool change.
POOL_CHANGE_TIMEOUT = 30.0


class ControlHandler:
    """Answer the control requests addressed to ``worker``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.ops: dict[str, Callable[[Request], Any]] = {
            "ping": lambda request: "pong",
            "active": self.active,
            "reserved": self.reserved,
            "scheduled": self.scheduled,
            "registered": self.registered,
            "stats": self.stats,
            "query_task": self.query_task,
            "rate_limit": self.limits_changed,
            "time_limit": self.limits_changed,
            "shutdown": self.shutdown,
            "pool_grow": self.pool_grow,
            "pool_shrink": self.pool_shrink,
            "add_consumer": self.add_consumer,
            "cancel_consumer": self.cancel_consumer,
        }
        self._after_reply: list[Callable[[], None]] = []

    def __call__(self, payload: dict[str, Any]) -> None:
        request = Request.from_payload(payload)
        worker = self.worker
        if request is None or not request.addressed_to(worker.name, worker.hostname):
            return
        op = self.ops.get(request.op)
        if op is None:
            reply = self._reply(
                error=f"unknown operation {request.op!r}: this worker knows "
                f"{', '.join(sorted(self.ops))}"
            )
        else:
            try:
                reply = self._reply(result=op(request))
            except Exception as exc:
                logger.warning("control request %s failed: %s", request.op, exc)
                reply = self._reply(error=str(exc) or type(exc).__name__)
        try:
            send_reply(get_broker(), request, reply)
        finally:
            after, self._after_reply = self._after_reply, []
            for action in after:
                action()

    def _reply(self, *, result: Any = None, error: str | None = None) -> Reply:
        worker = self.worker
        return Reply(worker.name, worker.hostname, error is None, result, error)

    # -- inspect -------------------------------------------------------------------
    def active(self, request: Request) -> list[dict[str, Any]]:
        return inspection.active(get_broker(), self.worker.running_tasks())

    def reserved(self, request: Request) -> list[dict[str, Any]]:
        worker = self.worker
        return inspection.reserved(
            get_broker(), worker.consumer_names(), worker.queues, worker.running_tasks()
        )

    def scheduled(self, request: Request) -> dict[str, list[dict[str, Any]]]:
        limit = request.args.get("limit", 100)
        limit = limit if isinstance(limit, int) and limit > 0 else 100
        return inspection.scheduled(get_broker(), self.worker.queues, limit)

    def registered(self, request: Request) -> list[dict[str, Any]]:
        runtime = self.worker.runtime_limits
        return [
            {"name": name, **runtime.effective(registry.get(name))}
            for name in registry.names(include_internal=True)
        ]

    def query_task(self, request: Request) -> dict[str, dict[str, Any]]:
        ids = {str(i) for i in request.args.get("ids") or []}
        found: dict[str, dict[str, Any]] = {}
        for row in self.reserved(request):
            if row.get("task_id") in ids:
                found[row["task_id"]] = {"state": "reserved", **row}
        for row in self.active(request):
            if row.get("task_id") in ids:
                found[row["task_id"]] = {"state": "active", **row}
        return found

    def stats(self, request: Request) -> dict[str, Any]:
        from django_taskq.monitor.workers import counts

        worker = self.worker
        usage = resource.getrusage(resource.RUSAGE_SELF)
        processed, failed = counts(get_broker(), {worker.hostname}).get(worker.hostname, (0, 0))
        runtime = worker.runtime_limits
        return {
            **worker.describe(),
            "uptime": round(time.time() - worker.started, 3),
            "processed": processed,
            "failed": failed,
            "prefetch": worker.consumer_prefetch(),
            "consumers": worker.consumer_names(),
            "rusage": {
                "maxrss_kib": usage.ru_maxrss,
                "utime": usage.ru_utime,
                "stime": usage.ru_stime,
            },
            "runtime_limits": {"rates": runtime.rates, "times": runtime.times},
            "broker": redact(broker_url()),
        }

    # -- control -------------------------------------------------------------------
    def limits_changed(self, request: Request) -> dict[str, Any]:
        """rate_limit / time_limit: the new limits are in Redis; load them, tell the children."""
        worker = self.worker
        worker.runtime_limits.load(get_broker())
        worker.runtime_limits.changed()
        name = str(request.args.get("task", ""))
        if name not in registry:
            return {"task": name, "registered": False}
        effective = worker.runtime_limits.effective(registry.get(name))
        return {"task": name, "registered": True, **effective}

    def shutdown(self, request: Request) -> str:
        logger.warning("warm shutdown requested by remote control")
        self._after_reply.append(self.worker.request_stop)
        return "shutting down: finishing the running tasks"

    def pool_grow(self, request: Request) -> dict[str, Any]:
        n = _count(request)
        concurrency = self._on_supervisor(lambda pool: pool.grow(n))
        return {"concurrency": concurrency, "processes": self.worker.prefork.processes()}

    def pool_shrink(self, request: Request) -> dict[str, Any]:
        n = _count(request)
        concurrency = self._on_supervisor(lambda pool: pool.shrink(n))
        return {"concurrency": concurrency, "stopping": n}

    def add_consumer(self, request: Request) -> dict[str, Any]:
        queue = keys.check_queue_name(request.args.get("queue"), "add_consumer")
        if queue in self.worker.queues:
            return {"queues": self.worker.queues, "changed": False}
        return self._set_queues([*self.worker.queues, queue])

    def cancel_consumer(self, request: Request) -> dict[str, Any]:
        queue = keys.check_queue_name(request.args.get("queue"), "cancel_consumer")
        if queue not in self.worker.queues:
            return {"queues": self.worker.queues, "changed": False}
        left = [q for q in self.worker.queues if q != queue]
        if not left:
            raise ValueError(
                f"cannot stop consuming {queue}: it is this worker's only queue "
                "(add another first, or use shutdown)"
            )
        return self._set_queues(left)

    def _set_queues(self, queues: list[str]) -> dict[str, Any]:
        """Switch the queue list; reply once no consumer can read a dropped queue any more.

        Prefork children are restarted warmly with the new list. Solo and
        threads consumers switch lists in place, at their next read; one
        that is blocked in a read of the old streams at this moment stays
        in it for at most BLOCK_MS, so a cancel waits that long before it
        replies (what such a read returns was fetched before the cancel,
        and runs, as prefetched messages do in Celery).
        """
        dropped = set(self.worker.queues) - set(queues)
        self.worker.set_queues(queues)
        if self.worker.prefork is not None:
            self._on_supervisor(lambda pool: pool.restart_children())
        elif dropped:
            time.sleep(BLOCK_MS / 1000 + 0.05)
        self.worker.heartbeat.beat_now()
        return {"queues": self.worker.queues, "changed": True}

    def _on_supervisor(self, change: Callable[[Any], int]) -> int:
        """Run ``change(pool)`` on the prefork supervisor and wait for it; then beat."""
        pool = self.worker.prefork
        if pool is None:
            raise ValueError(
                f"this worker runs the {self.worker.pool} pool: growing and shrinking need "
                "the prefork pool"
            )
        result = int(pool.submit(lambda: change(pool)).result(timeout=POOL_CHANGE_TIMEOUT))
        self.worker.heartbeat.beat_now()
        return result


def _count(request: Request) -> int:
    n = request.args.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number of 1 or more, not {n!r}")
    return n


__all__ = ["ControlHandler"]
