"""Self-test of the fault proxy (tests/faults/proxy.py) against a plain redis-server.

Before a worker test blames the worker, each fault mode must do exactly what
it claims, seen from raw sockets and a plain redis-py client: FIN reads as
EOF, RST as ECONNRESET, a stall delays and then delivers everything, a
dropped reply means the command ran but its answer never came, and counted
or matched faults hit only the connections they should.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from django_taskq.testing import RedisServer
from tests.faults.helpers import wait_until
from tests.faults.proxy import Fault, Proxy

pytestmark = pytest.mark.faults


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[Proxy]:
    with Proxy(redis_server.port) as running:
        yield running


def connect(proxy: Proxy) -> socket.socket:
    """A raw connection through the proxy that has had one PING answered."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"
    return sock


def no_retry_client(proxy: Proxy) -> redis.Redis:
    return redis.Redis(port=proxy.port, retry=Retry(NoBackoff(), 0), socket_timeout=5)


def test_forwards_both_ways(proxy: Proxy, broker: redis.Redis) -> None:
    client = no_retry_client(proxy)
    big = b"x" * 3_000_000
    client.set("big", big)
    assert client.get("big") == big
    pipe = client.pipeline(transaction=False)
    for _ in range(1000):
        pipe.incr("n")
    assert pipe.execute()[-1] == 1000
    assert broker.get("n") == b"1000"


def test_fin_closes_every_connection_gracefully(proxy: Proxy) -> None:
    a, b = connect(proxy), connect(proxy)
    assert proxy.fin() == 2
    assert a.recv(100) == b""  # EOF, not a reset
    assert b.recv(100) == b""
    assert proxy.applied[Fault.FIN] == 2
    assert connect(proxy).send(b"PING\r\n")  # new connections work


def test_rst_resets_every_connection(proxy: Proxy) -> None:
    a, b = connect(proxy), connect(proxy)
    assert proxy.rst() == 2
    for sock in (a, b):
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_rst_reaches_redis_too(proxy: Proxy, broker: redis.Redis) -> None:
    before = len(broker.client_list())
    _ = [connect(proxy) for _ in range(3)]
    assert len(broker.client_list()) == before + 3
    proxy.rst()
    assert wait_until(lambda: len(broker.client_list()) == before, 5)


def test_stall_holds_both_directions_then_delivers_everything(proxy: Proxy) -> None:
    sock = connect(proxy)
    proxy.stall(1.5)
    started = time.monotonic()
    sock.sendall(b"PING\r\nECHO hello\r\n")
    late = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    late.sendall(b"PING\r\n")  # a connection made during the stall is held too
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    sock.settimeout(5)
    got = b""
    while len(got) < len(b"+PONG\r\n$5\r\nhello\r\n"):
        got += sock.recv(100)
    took = time.monotonic() - started
    assert got == b"+PONG\r\n$5\r\nhello\r\n"
    assert late.recv(100) == b"+PONG\r\n"
    assert 1.4 <= took < 3, took
    assert not proxy.stalled()


def test_drop_reply_runs_the_command_but_loses_its_answer(
    proxy: Proxy, broker: redis.Redis
) -> None:
    client = no_retry_client(proxy)
    client.ping()
    proxy.drop_reply(count=1, match=b"INCR")
    client.get("x")  # not matched: answered
    with pytest.raises(redis.ConnectionError):
        client.incr("counter")
    assert broker.get("counter") == b"1"  # Redis ran it
    assert proxy.applied[Fault.DROP_REPLY] == 1
    assert client.incr("counter") == 2  # a new connection; the fault was used up


def test_drop_reply_of_xreadgroup_leaves_the_entry_pending(
    proxy: Proxy, broker: redis.Redis
) -> None:
    broker.xgroup_create("s", "g", id="0", mkstream=True)
    broker.xadd("s", {"k": "v"})
    client = no_retry_client(proxy)
    proxy.drop_reply(count=1, match=b"XREADGROUP")
    with pytest.raises(redis.ConnectionError):
        client.xreadgroup("g", "c", {"s": ">"}, count=1)
    assert broker.xpending("s", "g")["pending"] == 1  # delivered, yet the client never saw it


def test_drop_reply_only_of_a_reply_that_matches(proxy: Proxy, broker: redis.Redis) -> None:
    broker.xgroup_create("s", "g", id="0", mkstream=True)
    client = no_retry_client(proxy)
    proxy.drop_reply(count=1, match=b"XREADGROUP", reply_match=b"payload")
    assert client.xreadgroup("g", "c", {"s": ">"}, count=1) == []  # empty: forwarded
    broker.xadd("s", {"k": "payload"})
    with pytest.raises(redis.ConnectionError):
        client.xreadgroup("g", "c", {"s": ">"}, count=1)
    assert broker.xpending("s", "g")["pending"] == 1
    broker.xadd("s", {"k": "payload"})
    reply: Any = client.xreadgroup("g", "c", {"s": ">"}, count=1)
    assert len(reply[0][1]) == 1  # used up


def test_drop_reply_on_every_connection(proxy: Proxy, broker: redis.Redis) -> None:
    a, b = connect(proxy), connect(proxy)
    assert proxy.drop_reply() == 2
    a.sendall(b"INCR c\r\n")
    b.sendall(b"INCR c\r\n")
    assert a.recv(100) == b""
    assert b.recv(100) == b""
    assert broker.get("c") == b"2"


def test_counted_fault_hits_only_the_matching_connection(proxy: Proxy) -> None:
    a, b = connect(proxy), connect(proxy)
    proxy.fin(count=1, match=b"ECHO")
    a.sendall(b"PING\r\n")
    assert a.recv(100) == b"+PONG\r\n"
    b.sendall(b"ECHO bye\r\n")
    assert b.recv(100) == b""  # closed instead of forwarding
    a.sendall(b"ECHO still\r\n")  # the count is used up
    assert a.recv(100) == b"$5\r\nstill\r\n"


def test_counted_stall_holds_one_connection_only(proxy: Proxy) -> None:
    a, b = connect(proxy), connect(proxy)
    proxy.stall(1.0, count=1, match=b"ECHO")
    started = time.monotonic()
    a.sendall(b"ECHO slow\r\n")
    b.sendall(b"PING\r\n")
    assert b.recv(100) == b"+PONG\r\n"
    assert time.monotonic() - started < 0.5
    assert a.recv(100) == b"$4\r\nslow\r\n"
    assert time.monotonic() - started >= 0.95
    assert proxy.wait_applied(Fault.STALL, 1, 1)


def test_counted_rst_of_next_n_connections(proxy: Proxy) -> None:
    socks = [connect(proxy) for _ in range(3)]
    proxy.rst(count=2)
    for sock in socks:
        sock.sendall(b"PING\r\n")
    outcomes = []
    for sock in socks:
        try:
            outcomes.append(sock.recv(100))
        except ConnectionResetError:
            outcomes.append(b"reset")
    assert sorted(outcomes) == [b"+PONG\r\n", b"reset", b"reset"]


def test_redis_down_means_refused(redis_server: RedisServer) -> None:
    with Proxy(redis_server.port) as proxy:
        redis_server.kill()
        try:
            client = no_retry_client(proxy)
            with pytest.raises(redis.ConnectionError):
                client.ping()
        finally:
            redis_server.start()
        assert no_retry_client(proxy).ping()
