"""Heartbeats: the thread that says which consumers, and which worker, are alive.

Recovery asks "is the consumer holding this message alive?", never "has it
held it too long?" (docs/delivery.md). The answer is a heartbeat key per
consumer with a TTL, refreshed here on a thread of its own with a Redis
connection of its own, so that nothing else the worker does (promoting a
large backlog of delayed messages, a recovery sweep, a slow flush) can
delay a beat past its TTL (DESIGN 12).

Each beat also writes the worker's description and its place in the
workers index (scored by the time of the beat), so a worker shows up again
by itself after Redis lost its data, and a crashed worker is pruned from
the index instead of staying there as a ghost. The description is what the
admin's Workers page and ``taskq_inspect`` show: pool, concurrency, queues,
the tasks running now and since when, the load average.

The names of the tasks the worker registered go into a set of their own
(``keys.worker_tasks``), written at the first beat and again only when a
beat finds it gone (Redis lost its data): it is as long as the task list,
so each beat only renews its expiry instead of rewriting it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from django_taskq.broker import keys
from django_taskq.broker.connection import new_client
from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.worker")


class Heartbeat(threading.Thread):
    """Refresh the heartbeats of ``names()`` and the worker's record until ``stop`` is set."""

    def __init__(
        self,
        stop: threading.Event,
        names: Callable[[], list[str]],
        worker: str,
        info: Callable[[], dict[str, Any]],
        tasks: Callable[[], list[str]] | None = None,
    ) -> None:
        super().__init__(name="taskq-heartbeat", daemon=True)
        self.stop_event = stop
        self.names = names
        self.worker = worker
        self.info = info
        self.tasks = tasks
        self._tasks_written = False
        self._describe_failed = False
        timeout = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
        # A beat lives 3/4 of the timeout and is refreshed every 1/6, so a
        # beat can be late twice over before a consumer is taken for dead.
        self.ttl_ms = int(timeout * 750)
        self.every = timeout / 6
        self.keep_ms = int(float(taskq_settings.WORKER_FORGET_AFTER) * 1000)
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = new_client()
        return self._client

    def beat_now(self, extra: list[str] | None = None) -> None:
        """Refresh every heartbeat now, in one round trip (``extra``: names not listed yet).

        Called by the supervisor before a consumer's first read, so a
        consumer never holds a message without a heartbeat.
        """
        now_ms = int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        for name in [*self.names(), *(extra or [])]:
            pipe.set(keys.heartbeat(name), now_ms, px=self.ttl_ms)
        info = self._describe()
        if info is not None:
            info["last_beat"] = now_ms / 1000
            pipe.set(keys.worker_info(self.worker), json.dumps(info), px=self.keep_ms)
        pipe.zadd(keys.workers(), {self.worker: now_ms})
        if self.tasks is not None and self._tasks_written:
            pipe.pexpire(keys.worker_tasks(self.worker), self.keep_ms)
        replies = pipe.execute()
        if self.tasks is not None and not (self._tasks_written and replies[-1]):
            self.write_tasks()

    def _describe(self) -> dict[str, Any] | None:
        """The worker's description; None if building it failed (the beats go on without it).

        The description reads what the children run (shared memory) and the
        load; whatever goes wrong there must never stop the beats, or every
        consumer of the worker would be taken for dead and its messages run
        twice. The error is logged once per streak of failures.
        """
        try:
            info = dict(self.info())
        except Exception:
            if not self._describe_failed:
                logger.exception(
                    "heartbeats: cannot describe worker %s; beating without its description",
                    self.worker,
                )
            self._describe_failed = True
            return None
        self._describe_failed = False
        return info

    def write_tasks(self) -> None:
        """Write the set of registered task names (at start, and after Redis lost it)."""
        if self.tasks is None:
            return
        names = self.tasks()
        key = keys.worker_tasks(self.worker)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        if names:
            pipe.sadd(key, *names)
            pipe.pexpire(key, self.keep_ms)
        pipe.execute()
        self._tasks_written = True

    def beat_until_done(self, extra: list[str] | None = None) -> bool:
        """``beat_now()``, retried while Redis is unreachable; False if stopped meanwhile.

        A consumer must not read before its heartbeat exists, and a Redis
        that is briefly away at that moment must not end the worker.
        """
        delay = 0.1
        while not self.stop_event.is_set():
            try:
                self.beat_now(extra)
                return True
            except redis.RedisError as exc:
                logger.warning("heartbeats: cannot reach Redis (%s); retrying in %.1fs", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 2.0)
        return False

    def forget(self, name: str) -> None:
        """Drop the heartbeat of a consumer that ended (its messages were given back)."""
        self.client.delete(keys.heartbeat(name))

    def run(self) -> None:
        failing = False
        while not self.stop_event.is_set():
            try:
                self.beat_now()
                if failing:
                    logger.info("heartbeats: Redis is reachable again")
                failing = False
                wait = self.every
            except redis.RedisError as exc:
                if not failing:
                    logger.warning("heartbeats: cannot reach Redis (%s); retrying", exc)
                failing = True
                wait = min(0.5, self.every)
            except Exception:
                # Never die: without beats every consumer of this worker is
                # taken for dead and its messages are run again elsewhere.
                logger.exception("heartbeats: a beat failed; retrying")
                wait = min(0.5, self.every)
            self.stop_event.wait(wait)

    def close(self, names: list[str]) -> None:
        """At shutdown: remove the worker and the heartbeats of ``names``."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(keys.workers(), self.worker)
        pipe.delete(keys.worker_info(self.worker))
        pipe.delete(keys.worker_tasks(self.worker))
        for name in names:
            pipe.delete(keys.heartbeat(name))
        pipe.execute()
