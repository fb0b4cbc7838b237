"""The worker's housekeeping thread: heartbeats, due ETAs, lost-worker recovery.

One per worker process (the prefork parent, or the solo/threads worker):

- Heartbeats: refreshes a TTL key for every live consumer of this worker, so
  that liveness, not a visibility timeout, decides when a message is
  redelivered. A task that runs for hours on a live worker is never stolen.
- Delayed messages: moves due ETA/countdown/retry messages into their
  streams. It sleeps until the earliest due time and is woken early through
  pub/sub when an earlier one is published; it never sleep-polls.
- Recovery: re-adds the messages of consumers whose heartbeat expired
  (any worker's), dead-lettering those delivered TASKQ_MAX_DELIVERIES times.
- Control: runs revoke(terminate=True) requests for the tasks it runs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import redis

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker, new_client
from django_taskq.broker.scripts import script
from django_taskq.conf import taskq_settings
from django_taskq.worker import streams as ops

logger = logging.getLogger("django_taskq.worker")

PROMOTE_LIMIT = 1000


class Maintenance(threading.Thread):
    """Background thread of a worker process."""

    def __init__(
        self,
        stop: threading.Event,
        consumers: Callable[[], list[str]],
        on_control: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        super().__init__(name="taskq-maintenance", daemon=True)
        self.stop_event = stop
        self.consumers = consumers
        self.on_control = on_control
        # A heartbeat lives 3/4 of the timeout and recovery runs every 1/4, so
        # a dead consumer's messages are back within the timeout at worst.
        self.timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
        self.ttl = self.timeout * 0.75
        self.beat_every = self.timeout / 4
        self.reclaim_every = self.timeout / 4
        self.next_due: float | None = 0.0  # epoch seconds; 0 = check now
        self.wake = threading.Event()

    def beat_now(self) -> None:
        """Refresh every live consumer's heartbeat (also called before a child starts)."""
        names = self.consumers()
        if not names:
            return
        pipe = get_broker().pipeline(transaction=False)
        ttl = int(self.ttl * 1000)
        for name in names:
            pipe.set(keys.heartbeat(name), int(time.time()), px=ttl)
        pipe.execute()

    def run(self) -> None:
        backoff = 0.1
        pubsub = None
        last_beat = last_reclaim = 0.0
        while not self.stop_event.is_set():
            try:
                if pubsub is None:
                    pubsub = new_client().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(keys.delayed_wake(), keys.control())
                    self.next_due = 0.0
                now = time.time()
                if now - last_beat >= self.beat_every:
                    self.beat_now()
                    last_beat = now
                if self.next_due is not None and now >= self.next_due:
                    self.promote()
                if now - last_reclaim >= self.reclaim_every:
                    self.reclaim()
                    last_reclaim = now
                wait = min(self.beat_every - (time.time() - last_beat), 1.0)
                if self.next_due is not None:
                    wait = min(wait, self.next_due - time.time())
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

    def _on_message(self, message: dict[str, object]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if channel == keys.delayed_wake():
            self.next_due = 0.0
            self.promote()
        elif channel == keys.control() and self.on_control is not None:
            data = message.get("data")
            try:
                payload = json.loads(data) if isinstance(data, bytes | str) else None
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                self.on_control(payload)

    def promote(self) -> None:
        """Move due delayed messages into their streams; remember the next due time."""
        client = get_broker()
        promote = script(client, "promote")
        while True:
            moved, next_due = promote(
                keys=[keys.delayed()], args=[int(time.time() * 1000), PROMOTE_LIMIT], client=client
            )
            if int(moved) < PROMOTE_LIMIT:
                break
        nd = float(next_due)
        self.next_due = None if nd < 0 else nd / 1000.0

    def reclaim(self) -> None:
        """Redeliver messages held by consumers whose heartbeat has expired."""
        client = get_broker()
        names = [
            q.decode() if isinstance(q, bytes) else str(q) for q in client.smembers(keys.queues())
        ]
        if not names:
            return
        result = ops.reclaim_dead(client, keys.streams_for(sorted(names)))
        if result.requeued or result.dead:
            logger.warning(
                "recovered %d message(s) from lost workers; dead-lettered %d",
                result.requeued,
                result.dead,
            )
