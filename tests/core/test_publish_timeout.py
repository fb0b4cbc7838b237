"""TASKQ_PUBLISH_TIMEOUT bounds a whole send against a sick Redis, and says what was sent.

The sick servers are real sockets on 127.0.0.1 (tests/sick.py): one accepts
and never answers, one drops SYNs so a connect hangs. The "reply lost" case
is the session's real redis-server stopped with SIGSTOP while a command is
in flight: it runs the command when it is continued.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from django_taskq import chain, group
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.deadline import DeadlineConnection, deadline
from django_taskq.checks import check_settings
from django_taskq.conf import DEFAULTS
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.testing import RedisServer, free_port
from tests.sick import Blackhole, SilentServer
from tests.testapp.tasks import add
from tests.topology import single_redis_only

#: What the bound may be exceeded by: scheduling, not a second attempt.
MARGIN = 1.5

#: Retry far more often than the deadline allows, so only the deadline ends it.
MANY_RETRIES = {"max_retries": 1000, "interval_start": 0.05, "interval_step": 0.0}

SENDS: dict[str, Callable[[], Any]] = {
    "delay": lambda: add.delay(1, 2),
    "apply_async": lambda: add.apply_async((1, 2), countdown=30),
    "delay_many": lambda: add.delay_many([(1, 1), (2, 2)]),
    "group": lambda: group(add.s(1, 1), add.s(2, 2)).delay(),
    "chain": lambda: chain(add.s(1, 1), add.s(2)).delay(),
}


def _timed(send: Callable[[], Any]) -> tuple[BrokerUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        send()
    return info.value, time.monotonic() - started


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    try:
        hole = Blackhole()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with hole:
        assert hole.connect_hangs()
        yield hole


class Pause:
    """SIGSTOP / SIGCONT the session's redis-server (continued after the test in any case)."""

    def __init__(self, server: RedisServer) -> None:
        assert server.process is not None
        self.pid = server.process.pid
        self.stopped = False

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        if self.stopped:
            os.kill(self.pid, signal.SIGCONT)
            self.stopped = False


@pytest.fixture
def paused(redis_server: RedisServer) -> Iterator[Pause]:
    pause = Pause(redis_server)
    yield pause
    pause.resume()


@pytest.mark.parametrize("send", list(SENDS))
def test_every_send_to_a_redis_that_never_answers_ends_within_the_timeout(
    silent: SilentServer, send: str
) -> None:
    with override_settings(
        TASKQ_BROKER_URL=silent.url, TASKQ_PUBLISH_TIMEOUT=1.0, TASKQ_PUBLISH_RETRY=MANY_RETRIES
    ):
        error, elapsed = _timed(SENDS[send])
    assert elapsed < 1.0 + MARGIN, f"{send} took {elapsed:.2f}s"
    assert f"Redis at {silent.url} did not answer in time" in str(error)
    assert "TASKQ_PUBLISH_TIMEOUT (1s)" in str(error)
    # The connection's handshake never got a reply, so the command itself was
    # never written: the message says so, and it is true.
    assert silent.connections >= 1 and b"EVALSHA" not in bytes(silent.received).upper()
    assert error.maybe_sent is False
    assert "not sent" in str(error)
    assert error.task_ids


def test_delay_to_a_host_that_drops_packets_ends_within_the_timeout(blackhole: Blackhole) -> None:
    with override_settings(
        TASKQ_BROKER_URL=blackhole.url,
        TASKQ_PUBLISH_TIMEOUT=1.0,
        TASKQ_BROKER_CONNECT_TIMEOUT=3.0,
        TASKQ_PUBLISH_RETRY=MANY_RETRIES,
    ):
        error, elapsed = _timed(lambda: add.delay(1, 2))
    assert elapsed < 1.0 + MARGIN
    assert "Timeout connecting" in str(error)
    assert error.maybe_sent is False
    assert error.task_id is not None and f"(its id was {error.task_id})" in str(error)


def test_retries_stop_when_the_deadline_is_spent() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # refused at once: only the deadline ends it
    with override_settings(
        TASKQ_BROKER_URL=url, TASKQ_PUBLISH_TIMEOUT=1.0, TASKQ_PUBLISH_RETRY=MANY_RETRIES
    ):
        error, elapsed = _timed(lambda: add.delay(1, 2))
    assert 0.9 < elapsed < 1.0 + MARGIN
    attempts = int(str(error).split(" after ")[1].split(" attempts")[0])
    assert attempts > 5
    # Each attempt is refused, but the last one may be cut by the deadline
    # first (a connect given the last milliseconds, on a loaded machine).
    assert error.maybe_sent is False
    assert "is unreachable" in str(error) or "did not answer in time" in str(error)


def test_redis_py_retries_do_not_stretch_the_bound(silent: SilentServer) -> None:
    retry = Retry(ConstantBackoff(0.5), 10)
    with override_settings(
        TASKQ_BROKER_URL=silent.url,
        TASKQ_PUBLISH_TIMEOUT=1.0,
        TASKQ_BROKER_CONNECTION_OPTIONS={"retry": retry},
    ):
        _, elapsed = _timed(lambda: add.delay(1, 2))
        connection = get_broker().connection_pool.make_connection()
        # Outside a deadline the connection keeps the policy it was given.
        assert connection.retry.get_retries() == 10
        with deadline(1):
            assert connection.retry.get_retries() == 0
    assert elapsed < 1.0 + MARGIN


def test_default_timeout_bounds_the_call_at_five_seconds(silent: SilentServer) -> None:
    assert DEFAULTS["PUBLISH_TIMEOUT"] == 5.0
    with override_settings(TASKQ_BROKER_URL=silent.url):
        _, elapsed = _timed(lambda: add.delay(1, 2))
    assert 4.9 < elapsed < 5.0 + MARGIN


def test_a_send_whose_reply_is_lost_is_reported_as_perhaps_sent(broker: Any, paused: Pause) -> None:
    with override_settings(TASKQ_PUBLISH_TIMEOUT=1.0):
        add.delay(0, 0)  # a pooled connection, so the command itself is what waits
        paused.stop()
        error, elapsed = _timed(lambda: add.delay(1, 2))
    assert elapsed < 1.0 + MARGIN
    assert error.maybe_sent is True
    assert error.task_id is not None
    assert f"perhaps sent; its id is {error.task_id}" in str(error)
    assert f"task_id={error.task_id!r}" in str(error)
    # Continued, Redis runs what it had received: the task is queued after all.
    paused.resume()
    ids = [fields[b"i"].decode() for _, fields in broker.xrange(keys.stream("default", 5))]
    assert error.task_id in ids


def test_a_batch_whose_reply_is_lost_names_every_id(paused: Pause) -> None:
    with override_settings(TASKQ_PUBLISH_TIMEOUT=1.0):
        add.delay(0, 0)
        paused.stop()
        error, _ = _timed(lambda: add.delay_many([(i, i) for i in range(5)]))
    assert error.maybe_sent is True
    assert error.task_id is None and len(error.task_ids) == 5
    assert "The 5 tasks were perhaps sent; their ids are " + ", ".join(error.task_ids[:3]) in str(
        error
    )
    assert "(5 in .task_ids)" in str(error)


@single_redis_only
def test_a_connection_keeps_its_own_timeouts_after_a_deadline(broker: Any) -> None:
    with override_settings(TASKQ_PUBLISH_TIMEOUT=0.3):
        add.delay(1, 2)
        # The same pooled connection, outside any deadline: a 1 s blocking read
        # must not be cut to what was left of the 0.3 s.
        assert get_broker().blpop(["nothing-here"], timeout=1) is None
        connection = get_broker().connection_pool.get_connection()
        try:
            assert isinstance(connection, DeadlineConnection)
            assert connection._sock is not None
            assert connection._sock.gettimeout() == 10.0
        finally:
            get_broker().connection_pool.release(connection)


def test_get_with_a_timeout_on_a_redis_that_never_answers(silent: SilentServer) -> None:
    from django_taskq import AsyncResult

    with override_settings(TASKQ_BROKER_URL=silent.url, TASKQ_PUBLISH_TIMEOUT=1.0):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="cannot wait for task abc: Redis at"):
            AsyncResult("abc").get(timeout=1)
    assert time.monotonic() - started < 1.0 + 1.0 + MARGIN


def test_a_sick_result_redis_does_not_fail_a_send_that_queued(
    broker: Any, silent: SilentServer, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(TASKQ_RESULT_BACKEND=silent.url, TASKQ_PUBLISH_TIMEOUT=1.0):
        started = time.monotonic()
        result = add.delay(1, 2)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + MARGIN  # one bound for the message and its PENDING record
    ids = [fields[b"i"].decode() for _, fields in broker.xrange(keys.stream("default", 5))]
    assert result.id in ids
    assert "PENDING records could not be written" in caplog.text


def test_cache_alias_pool_with_the_deadline_connection_class(silent: SilentServer) -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": silent.url,
            # No socket timeouts at all (django-redis's default): the class alone bounds it.
            "OPTIONS": {"CONNECTION_POOL_KWARGS": {"connection_class": DeadlineConnection}},
        },
    }
    with override_settings(
        CACHES=caches,
        TASKQ_BROKER_URL=None,
        TASKQ_REDIS_CACHE_ALIAS="redis",
        TASKQ_PUBLISH_TIMEOUT=1.0,
    ):
        error, elapsed = _timed(lambda: add.delay(1, 2))
    assert elapsed < 1.0 + MARGIN
    assert error.maybe_sent is False
    assert "the cache TASKQ_REDIS_CACHE_ALIAS='redis'" in str(error)


def test_cache_alias_pool_of_its_own_is_bounded_by_its_socket_timeouts(
    silent: SilentServer,
) -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": silent.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    with override_settings(
        CACHES=caches,
        TASKQ_BROKER_URL=None,
        TASKQ_REDIS_CACHE_ALIAS="redis",
        TASKQ_PUBLISH_TIMEOUT=1.0,
        TASKQ_PUBLISH_RETRY=MANY_RETRIES,
    ):
        error, elapsed = _timed(lambda: add.delay(1, 2))
    # Retries stop at the deadline; the attempt under way runs to the cache's timeouts.
    assert elapsed < 1.0 + 0.5 + 0.5 + MARGIN
    assert error.maybe_sent is True  # its connections cannot tell


def test_publish_timeout_is_checked() -> None:
    for bad in (0, -1, "5", True):
        with override_settings(TASKQ_PUBLISH_TIMEOUT=bad):
            assert "taskq.E003" in {m.id for m in check_settings()}, bad
    with override_settings(TASKQ_PUBLISH_TIMEOUT=0.5):
        assert "taskq.E003" not in {m.id for m in check_settings()}
