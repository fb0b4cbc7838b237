"""The worker's housekeeping thread: due ETAs, lost-worker recovery, pruning, control.

One per worker process (the prefork parent, or the solo/threads worker).
Heartbeats are not here: they have a thread of their own (heartbeat.py), so
nothing below can make a live consumer look dead.

- Delayed messages: moves due ETA/countdown/retry messages of the worker's
  queues into their streams. It sleeps until the earliest due time and is
  woken early through pub/sub when an earlier one is published; it never
  sleep-polls. Each pass moves a bounded number, so a backlog of a million
  due messages is worked off in steps instead of one long stall.
- Recovery: puts back the messages of consumers whose heartbeat expired
  (any worker's, on every known queue); a message delivered
  TASKQ_MAX_DELIVERIES times is then dead-lettered by the consumer that
  fetches it, through the one settle step.
- Pruning: forgets workers that stopped beating long ago and queues that
  have been empty and unused for long (broker/queues.py).
- Control: hands the requests of the control channel (revoke(terminate=True),
  taskq_control, taskq_inspect) to the worker, which replies
  (worker/control.py). ``listening`` is set once the subscription is
  confirmed by Redis, so the worker says "ready" only when a request sent
  from then on reaches it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from django_taskq.broker import delayed, keys
from django_taskq.broker import queues as registry
from django_taskq.broker.connection import get_broker, new_client
from django_taskq.conf import taskq_settings
from django_taskq.worker import streams as ops

logger = logging.getLogger("django_taskq.worker")

#: How often workers and queues unused for long are pruned.
PRUNE_EVERY = 600.0


class Maintenance(threading.Thread):
    """Background thread of a worker process."""

    def __init__(
        self,
        stop: threading.Event,
        queues: list[str],
        on_control: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        super().__init__(name="taskq-maintenance", daemon=True)
        self.stop_event = stop
        self.queues = queues
        self.on_control = on_control
        # Heartbeats live 3/4 of the timeout and recovery runs every 1/4, so a
        # dead consumer's messages are back within the timeout at worst.
        self.timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
        self.reclaim_every = self.timeout / 4
        self.next_due: dict[str, float | None] = {q: 0.0 for q in queues}  # epoch s; 0 = now
        self.last_prune = 0.0
        #: Set once the control channel subscription is confirmed.
        self.listening = threading.Event()

    def set_queues(self, queues: list[str]) -> None:
        """Promote and recover the queues of a changed list (called on this thread)."""
        self.queues = list(queues)
        self.next_due = {q: self.next_due.get(q, 0.0) for q in self.queues}

    def run(self) -> None:
        backoff = 0.1
        pubsub = None
        last_reclaim = 0.0
        while not self.stop_event.is_set():
            try:
                if pubsub is None:
                    pubsub = self._subscribe()
                    self.next_due = {q: 0.0 for q in self.queues}  # notices may have been missed
                now = time.time()
                busy = self.promote_due(now)
                if now - last_reclaim >= self.reclaim_every:
                    self.reclaim()
                    last_reclaim = now
                if now - self.last_prune >= PRUNE_EVERY:
                    self.prune()
                    self.last_prune = now
                wait = 0.0 if busy else self._wait_time(last_reclaim)
                message = pubsub.get_message(timeout=max(wait, 0.0005))
                while message is not None:
                    self._on_message(message)
                    message = pubsub.get_message(timeout=0)
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("maintenance lost Redis (%s); retrying in %.1fs", exc, backoff)
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
                pubsub = None
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                logger.exception("maintenance step failed; continuing")
                self.stop_event.wait(1.0)
        if pubsub is not None:
            pubsub.close()

    def _subscribe(self) -> Any:
        """Subscribe to the wake-up and control channels; wait until Redis confirms both.

        Once the confirmations are read, every message published afterwards
        reaches this subscription.
        """
        pubsub: Any = new_client().pubsub()  # type: ignore[no-untyped-call]
        channels = [keys.delayed_wake(), keys.control()]
        pubsub.subscribe(*channels)
        confirmed = 0
        deadline = time.monotonic() + 5.0
        while confirmed < len(channels) and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            if message.get("type") == "subscribe":
                confirmed += 1
            else:
                self._on_message(message)
        pubsub.ignore_subscribe_messages = True
        self.listening.set()
        return pubsub

    def _wait_time(self, last_reclaim: float) -> float:
        wait = min(self.reclaim_every - (time.time() - last_reclaim), 1.0)
        for due in self.next_due.values():
            if due is not None:
                wait = min(wait, due - time.time())
        return wait

    def _on_message(self, message: dict[str, object]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode(errors="replace")
        data = message.get("data")
        if channel == keys.delayed_wake():
            queue = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
            if queue in self.next_due:
                self.next_due[queue] = 0.0
        elif channel == keys.control() and self.on_control is not None:
            try:
                payload = json.loads(data) if isinstance(data, bytes | str) else None
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                self.on_control(payload)

    def promote_due(self, now: float) -> bool:
        """Promote the queues whose next due time has come; True if a backlog remains."""
        backlog = False
        for queue, due in self.next_due.items():
            if due is not None and now >= due:
                backlog = self.promote(queue) or backlog
        return backlog

    def promote(self, queue: str) -> bool:
        """Move ``queue``'s due delayed messages into its streams, in bounded steps.

        Returns True when more are due than one pass moves (the caller comes
        back at once, after its other duties). The beat leader may be
        promoting the same queue at the same moment (runs it sent ahead):
        promote.lua moves each message once, whoever runs it.
        """
        backlog, next_due = delayed.promote(get_broker(), queue)
        self.next_due[queue] = 0.0 if backlog else next_due
        return backlog

    def reclaim(self) -> None:
        """Give back messages held by consumers whose heartbeat has expired, on every queue."""
        client = get_broker()
        registry.register(client, self.queues)  # back after Redis lost its data
        names = sorted(set(registry.known(client)) | set(self.queues))
        moved = ops.reclaim_dead(client, keys.streams_for(names))
        if moved:
            logger.warning("recovered %d message(s) from lost workers", moved)

    def prune(self) -> None:
        """Forget workers gone for long, and queues empty and unused for long."""
        client = get_broker()
        forget_after = float(taskq_settings.WORKER_FORGET_AFTER)
        client.zremrangebyscore(keys.workers(), "-inf", (time.time() - forget_after) * 1000)
        removed = registry.prune(client)
        if removed:
            logger.info("forgot %d queue(s) empty and unused for long: %s", len(removed), removed)
