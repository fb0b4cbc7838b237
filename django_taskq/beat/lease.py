"""Leader election for beat: a lease in Redis that one beat holds at a time.

The lease is a key holding the holder's id, set with ``SET NX PX``. The
leader renews it every third of its lifetime (TASKQ_BEAT_LEASE_SECONDS); a
renewal that finds another holder, or none, means the lease was lost and the
leader stops dispatching at once. A beat that stops cleanly deletes the
lease and publishes a notice, so a follower takes over immediately; if the
leader dies, followers wait exactly until the lease expires, then one of
them wins the ``SET NX``. Takeover therefore happens at most one lease
lifetime after the leader's last renewal.

Leadership is an optimisation, not the safety net: every run is also keyed
by (periodic task, due time) when it is sent, so even two beats that both
believe they lead cannot send a run twice.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script

from django_taskq.broker import keys


def lease_key() -> str:
    return keys.global_key("beat:leader")


def led_key() -> str:
    """When a leader last held the lease (epoch ms): a new leader tells a handover by it."""
    return keys.global_key("beat:led")


def lease_channel() -> str:
    """Pub/sub channel told when the leader releases the lease."""
    return keys.global_key("beat:leader:released")


@cache
def _source(name: str) -> str:
    return resources.files("django_taskq.beat").joinpath("lua", f"{name}.lua").read_text()


def _script(client: redis.Redis, name: str) -> Script:
    registry: dict[str, Script] | None = getattr(client, "_taskq_beat_scripts", None)
    if registry is None:
        registry = {}
        client._taskq_beat_scripts = registry  # type: ignore[attr-defined]
    found = registry.get(name)
    if found is None:
        found = client.register_script(_source(name))
        registry[name] = found
    return found


def holder_id(hostname: str | None = None) -> str:
    """``host:pid:random`` - unique per beat, readable in ``redis-cli GET``."""
    return f"{hostname or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One process's view of a lease: beat's leader lease unless other keys are given.

    ``key``, ``led`` and ``channel`` name the lease, its "last held" time and
    its release channel (all of one hash tag); the history recorder holds a
    lease of its own this way.
    """

    def __init__(
        self,
        client: redis.Redis,
        holder: str,
        seconds: float,
        *,
        key: str | None = None,
        led: str | None = None,
        channel: str | None = None,
        setting: str = "TASKQ_BEAT_LEASE_SECONDS",
    ) -> None:
        if seconds < 1:
            raise ValueError(f"{setting} must be at least 1 second")
        self.client = client
        self.holder = holder
        self.seconds = float(seconds)
        self.key = key or lease_key()
        self.led = led or led_key()
        self.channel = channel or lease_channel()
        self._valid_until = 0.0  # monotonic; we lead while now < this
        #: When acquire() won the lease: when the leader before us last held
        #: it (epoch seconds), or None if no leader ever did.
        self.previous_leader_at: float | None = None

    @property
    def ttl_ms(self) -> int:
        return int(self.seconds * 1000)

    @property
    def renew_every(self) -> float:
        return self.seconds / 3

    def held(self) -> bool:
        """True while our last acquire/renew guarantees nobody else holds it.

        The margin covers clock-rate differences and the time to send a batch.
        """
        return time.monotonic() < self._valid_until

    def _granted(self, started: float) -> None:
        # Count from before the request was sent: the key cannot outlive that.
        self._valid_until = started + self.seconds * 0.9

    def acquire(self) -> bool:
        started = time.monotonic()
        if self.client.set(self.key, self.holder, nx=True, px=self.ttl_ms):
            self._granted(started)
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.led)
            pipe.set(self.led, int(time.time() * 1000))
            before = pipe.execute()[0]
            self.previous_leader_at = int(before) / 1000 if before is not None else None
            return True
        # After a Redis blip we may still hold it: renew instead.
        return self.renew()

    def handover(self) -> bool:
        """True when the lease was just taken over from a leader that held it moments ago.

        The previous leader renewed it at most a lease lifetime before it
        expired; anything longer ago means every beat was down.
        """
        if self.previous_leader_at is None:
            return False
        return time.time() - self.previous_leader_at <= self.seconds * 1.5

    def renew(self) -> bool:
        started = time.monotonic()
        renewed = _script(self.client, "lease_renew")(
            keys=[self.key, self.led], args=[self.holder, self.ttl_ms, int(time.time() * 1000)]
        )
        if renewed:
            self._granted(started)
            return True
        self._valid_until = 0.0
        return False

    def release(self) -> bool:
        self._valid_until = 0.0
        released = _script(self.client, "lease_release")(
            keys=[self.key], args=[self.holder, self.channel]
        )
        return bool(released)

    def seconds_until_free(self) -> float:
        """How long until the current lease expires (0 if free)."""
        ttl = self.client.pttl(self.key)
        return max(0.0, ttl / 1000.0) if ttl and ttl > 0 else 0.0

    def current_holder(self) -> str | None:
        raw = self.client.get(self.key)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw
