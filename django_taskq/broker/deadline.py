"""A deadline for a whole Redis call, retries included, and what it sent.

``TASKQ_PUBLISH_TIMEOUT`` bounds ``delay()`` as a whole. A socket timeout
alone cannot do that: it bounds one connect or one read, and a call makes
several of them (connect, the connection's handshake, the command, then the
same again for every retry). So ``with deadline(seconds):`` puts a point in
time in a context variable, and the connections django_taskq makes
(``DeadlineConnection`` and its SSL and Unix-socket siblings) cut every
connect, write and read to ``min(configured timeout, time left)`` while one
is set. Outside a deadline they behave exactly as redis-py's own classes.

The same connections record, in ``tracking()``, whether a command was
written to a socket, as opposed to failing while connecting: that is what
``BrokerUnavailable.maybe_sent`` reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry
from redis.utils import SENTINEL

T = TypeVar("T")

#: time.monotonic() value by which the current call must be done, or None.
_deadline: ContextVar[float | None] = ContextVar("taskq_deadline", default=None)


class deadline:  # used as a function: ``with deadline(seconds):``
    """Run the block with at most ``seconds`` for every Redis call in it.

    An enclosing deadline that ends sooner stays in force (a nested block
    never extends the time its caller was given). Yields the deadline as a
    ``time.monotonic()`` value. A class, not a generator context manager:
    every ``delay()`` enters one, and this costs it a third as much.
    """

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = max(float(seconds), 0.0)

    def __enter__(self) -> float:
        enclosing = _deadline.get()
        end = time.monotonic() + self._seconds
        if enclosing is not None and enclosing < end:
            end = enclosing
        self._token = _deadline.set(end)
        return end

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


def remaining() -> float | None:
    """Seconds left before the current deadline (may be <= 0), or None without one."""
    end = _deadline.get()
    return None if end is None else end - time.monotonic()


def _cut(configured: float | None, left: float) -> float:
    """A timeout no longer than ``left`` (``configured`` None means no timeout)."""
    return left if configured is None else min(float(configured), left)


@dataclass
class Progress:
    """What a block of Redis calls did, as seen by django_taskq's connections."""

    #: A django_taskq connection took part (else nothing below is known).
    observed: bool = False
    #: A command was written, or begun to be written, to a socket: Redis may
    #: have executed it even if its reply never came.
    written: bool = False

    @property
    def maybe_sent(self) -> bool:
        """False only when it is known that no command reached Redis."""
        return self.written or not self.observed


_progress: ContextVar[Progress | None] = ContextVar("taskq_progress", default=None)


class tracking:  # used as a function: ``with tracking() as progress:``
    """Record in the returned Progress whether the block's commands were written."""

    __slots__ = ("_progress", "_token")

    def __enter__(self) -> Progress:
        self._progress = Progress()
        self._token = _progress.set(self._progress)
        return self._progress

    def __exit__(self, *exc: object) -> None:
        _progress.reset(self._token)


def _observe(written: bool) -> None:
    progress = _progress.get()
    if progress is not None:
        progress.observed = True
        progress.written = progress.written or written


class DeadlineRetry(Retry):
    """redis-py's retry policy of a connection, except under a deadline: one try.

    The retries of a call under a deadline are the caller's (with_publish_retry
    spaces them and stops at the deadline); redis-py's own backoff sleeps
    would run past it.
    """

    def __init__(self, policy: Retry) -> None:
        super().__init__(NoBackoff(), 0, policy._supported_errors)
        self.policy = policy

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        if remaining() is None:
            return self.policy.call_with_retry(do, fail, is_retryable, with_failure_count)
        return super().call_with_retry(do, fail, is_retryable, with_failure_count)

    def get_retries(self) -> int:
        return self.policy.get_retries() if remaining() is None else 0

    def update_retries(self, value: int) -> None:
        self.policy.update_retries(value)

    def update_supported_errors(self, specified_errors: Iterable[type[Exception]]) -> None:
        errors = list(specified_errors)
        self.policy.update_supported_errors(errors)
        super().update_supported_errors(errors)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, DeadlineRetry):
            return bool(self.policy == other.policy)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.policy)


class DeadlineMixin(AbstractConnection):
    """Cut a connection's timeouts to the current deadline; note what it wrote.

    Mixed in before a redis-py connection class. Connecting (the TCP or TLS
    connect and the handshake: HELLO, AUTH, CLIENT SETINFO, SELECT) and
    health-check PINGs are *preliminary*: a failure there means the command
    itself never left this process.
    """

    _taskq_preliminary = 0

    # redis-py sets ``self.retry`` in __init__ and in ConnectionPool.set_retry;
    # whatever policy it is given runs inside a DeadlineRetry.
    @property  # type: ignore[override]
    def retry(self) -> Retry:
        policy: Retry = self.__dict__["_taskq_retry"]
        return policy

    @retry.setter
    def retry(self, value: Retry) -> None:
        if not isinstance(value, DeadlineRetry):
            value = DeadlineRetry(value)
        self.__dict__["_taskq_retry"] = value

    # Both run before every command (a connected socket returns at once), so
    # the preliminary mark is a counter kept by hand, not a context manager.
    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        self._taskq_preliminary += 1
        try:
            super().connect_check_health(check_health, retry_socket_connect)
        finally:
            self._taskq_preliminary -= 1

    def check_health(self) -> None:
        self._taskq_preliminary += 1
        try:
            super().check_health()  # type: ignore[no-untyped-call]
        finally:
            self._taskq_preliminary -= 1

    def _connect(self) -> Any:
        _observe(written=False)
        left = remaining()
        if left is None:
            return super()._connect()  # type: ignore[safe-super, no-untyped-call]
        if left <= 0:
            # The built-in TimeoutError (socket.timeout): redis-py turns it into
            # its own TimeoutError("Timeout connecting to server").
            raise TimeoutError("the deadline was spent before connecting")
        configured = (self._socket_connect_timeout, self._socket_timeout)
        # Both: the TLS handshake runs on the socket timeout.
        self._socket_connect_timeout = _cut(configured[0], left)
        self._socket_timeout = _cut(configured[1], left)
        try:
            sock = super()._connect()  # type: ignore[safe-super, no-untyped-call]
        finally:
            self._socket_connect_timeout, self._socket_timeout = configured
        sock.settimeout(configured[1])  # as redis-py leaves it, for later use
        return sock

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._sock:
            self.connect_check_health(check_health=False)
        if check_health:
            self.check_health()
        left = remaining()
        if left is not None and left <= 0:
            raise redis.TimeoutError("the deadline was spent before the command was written")
        _observe(written=not self._taskq_preliminary)
        sock = self._sock
        if left is None or sock is None:
            super().send_packed_command(command, check_health=False)  # type: ignore[no-untyped-call]
            return
        sock.settimeout(_cut(self._socket_timeout, left))
        try:
            super().send_packed_command(command, check_health=False)  # type: ignore[no-untyped-call]
        finally:
            if self._sock is sock:
                sock.settimeout(self._socket_timeout)

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        timeout: Any = SENTINEL,
        disconnect_on_error: bool = True,
        push_request: bool = False,
    ) -> Any:
        left = remaining()
        if left is not None:
            configured = self._socket_timeout if timeout is SENTINEL else timeout
            # A reply already in the buffer is still read when no time is left.
            timeout = max(_cut(configured, left), 0.001)
        return super().read_response(
            disable_decoding,
            timeout=timeout,
            disconnect_on_error=disconnect_on_error,
            push_request=push_request,
        )


class DeadlineConnection(DeadlineMixin, redis.Connection):
    """``redis.Connection`` (TCP) that honours the current deadline."""


class DeadlineSSLConnection(DeadlineMixin, redis.SSLConnection):
    """``redis.SSLConnection`` (``rediss://``) that honours the current deadline."""


class DeadlineUnixDomainSocketConnection(DeadlineMixin, redis.UnixDomainSocketConnection):
    """``redis.UnixDomainSocketConnection`` (``unix://``) that honours the current deadline."""


_NAMED: dict[type[Any], type[Any]] = {
    redis.Connection: DeadlineConnection,
    redis.SSLConnection: DeadlineSSLConnection,
    redis.UnixDomainSocketConnection: DeadlineUnixDomainSocketConnection,
}


_made: dict[type[Any], type[Any]] = {}


def deadline_aware(cls: type[Any]) -> type[Any]:
    """``cls`` (a redis-py connection class) with DeadlineMixin mixed in."""
    if issubclass(cls, DeadlineMixin):
        return cls
    if cls not in _made:
        _made[cls] = _NAMED.get(cls) or type(
            f"Deadline{cls.__name__}", (DeadlineMixin, cls), {"__module__": __name__}
        )
    return _made[cls]


def connection_class_for(url: str, given: type[Any] | None = None) -> type[Any]:
    """The connection class for a pool on ``url``: ``given`` or redis-py's, deadline-aware."""
    if given is None:
        scheme = urlsplit(url).scheme
        given = {"rediss": redis.SSLConnection, "unix": redis.UnixDomainSocketConnection}.get(
            scheme, redis.Connection
        )
    return deadline_aware(given)


def is_deadline_aware(client: redis.Redis) -> bool:
    """True when ``client``'s pool makes connections that honour deadlines."""
    cls = getattr(client.connection_pool, "connection_class", None)
    return isinstance(cls, type) and issubclass(cls, DeadlineMixin)


__all__ = [
    "DeadlineConnection",
    "DeadlineSSLConnection",
    "DeadlineUnixDomainSocketConnection",
    "Progress",
    "connection_class_for",
    "deadline",
    "deadline_aware",
    "remaining",
    "tracking",
]
