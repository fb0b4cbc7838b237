"""A loopback TCP proxy between a Redis client and redis-server that injects network faults.

Workers (or producers) get ``TASKQ_BROKER_URL=proxy.url``; the test then
breaks their connections in the ways real networks do, while Redis itself
stays up:

``Fault.FIN``
    close both sides gracefully (shutdown + close): the client reads EOF.
``Fault.RST``
    close both sides with ``SO_LINGER`` 0: the client gets ECONNRESET.
``Fault.STALL``
    stop forwarding in both directions for ``seconds``, then resume, with
    nothing lost (a network partition, a saturated link, a VM paused).
``Fault.DROP_REPLY``
    forward the client's next command, read Redis's reply and throw it away,
    then close the client side: "Redis ran the XREADGROUP but the reply
    never arrived".

Each fault applies either to every current connection at once
(``count=None``) or to the next ``count`` connections that send a command
(optionally only a command containing one of the ``match`` byte strings,
e.g. ``b"XREADGROUP"``). With ``count=None`` a stall is a partition: it also
holds connections opened while it lasts. A counted FIN or RST closes the
connection instead of forwarding the command, so Redis never sees it.

One thread per connection, multiplexing its two sockets with ``selectors``;
``socketserver`` runs the accept loop. Faults are handed to a connection's
own thread through a wake-up socket, so the thread that owns the sockets is
the only one that reads, writes or closes them.
"""

from __future__ import annotations

import enum
import selectors
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CHUNK = 65536


class Fault(enum.Enum):
    FIN = "fin"
    RST = "rst"
    STALL = "stall"
    DROP_REPLY = "drop_reply"


@dataclass
class _Armed:
    """A counted fault waiting for the next matching command."""

    fault: Fault
    left: int
    seconds: float
    match: tuple[bytes, ...]
    reply_match: tuple[bytes, ...] = ()  # DROP_REPLY: only a reply holding one of these

    def matches(self, data: bytes) -> bool:
        return not self.match or any(m in data for m in self.match)

    def reply_matches(self, data: bytes) -> bool:
        return not self.reply_match or any(m in data for m in self.reply_match)


def _close(sock: socket.socket, how: Fault) -> None:
    try:
        if how is Fault.RST:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class _Connection:
    """One proxied connection: client socket <-> upstream socket."""

    def __init__(self, proxy: Proxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(proxy.upstream, timeout=5)
        self.upstream.settimeout(None)
        for sock in (self.client, self.upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._wake_r, self._wake_w = socket.socketpair()
        self._requests: list[Fault] = []
        self._lock = threading.Lock()
        self.stall_until = 0.0  # time.monotonic()
        self.held = b""  # a command received as its own stall began, sent when it ends
        self.drop_after_send = False  # DROP_REPLY armed: forward the next command...
        self.awaiting_reply = False  # ...then discard the reply that follows
        self.candidate: _Armed | None = None  # a DROP_REPLY waiting to see the reply
        self.closed = threading.Event()
        self._shut_done = False

    # -- called from other threads ------------------------------------------------
    def request(self, fault: Fault) -> None:
        with self._lock:
            self._requests.append(fault)
        self.wake()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"!")
        except OSError:
            pass

    # -- the connection's own thread ----------------------------------------------
    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.client, selectors.EVENT_READ, "client")
        sel.register(self.upstream, selectors.EVENT_READ, "upstream")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        # While stalled only a wake-up is watched (the two sockets stay readable).
        stalled = selectors.DefaultSelector()
        stalled.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            self._loop(sel, stalled)
        except OSError:
            self._shut(Fault.FIN)
        finally:
            sel.close()
            stalled.close()
            self._shut(Fault.FIN)  # no-op if already closed
            self._wake_r.close()
            self._wake_w.close()
            self.proxy._forget(self)

    def _loop(self, sel: selectors.BaseSelector, stalled: selectors.BaseSelector) -> None:
        while True:
            with self._lock:
                requests, self._requests = self._requests, []
            for fault in requests:
                if fault in (Fault.FIN, Fault.RST):
                    self._shut(fault, applied=fault)
                    return
                if fault is Fault.DROP_REPLY:
                    self.drop_after_send = True
            stall_end = max(self.stall_until, self.proxy.partition_until)
            now = time.monotonic()
            if now < stall_end:
                # Forward nothing; only a wake-up (a new fault, close) interrupts the wait.
                if stalled.select(min(stall_end - now, 0.5)):
                    self._wake_r.recv(CHUNK)
                continue
            if self.held:
                held, self.held = self.held, b""
                self._to_upstream(held)
            for key, _ in sel.select(0.5):
                if key.data == "wake":
                    self._wake_r.recv(CHUNK)
                    break  # handle requests first
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(CHUNK)
                except OSError:
                    data = b""
                if not data:  # one side closed: close the other gracefully
                    self._shut(Fault.FIN)
                    return
                if key.data == "client":
                    armed = self.proxy._claim(data, self)
                    if armed is not None and armed.fault in (Fault.FIN, Fault.RST):
                        self._shut(armed.fault, applied=armed.fault)
                        return
                    if armed is not None and armed.fault is Fault.STALL:
                        self.stall_until = time.monotonic() + armed.seconds
                        self.held = data
                        self.proxy._applied(Fault.STALL)
                        break  # not one more byte in either direction until it ends
                    if armed is not None and armed.fault is Fault.DROP_REPLY:
                        self.drop_after_send = True
                    self._to_upstream(data)
                else:
                    candidate, self.candidate = self.candidate, None
                    if candidate is not None and self.proxy._claim_reply(candidate, data):
                        self.awaiting_reply = True
                    if self.awaiting_reply:
                        # The reply is read and thrown away; the client side is closed.
                        self._shut(Fault.FIN, applied=Fault.DROP_REPLY)
                        return
                    self.client.sendall(data)

    def _to_upstream(self, data: bytes) -> None:
        self.upstream.sendall(data)
        if self.drop_after_send:
            self.drop_after_send = False
            self.awaiting_reply = True

    def _shut(self, how: Fault, applied: Fault | None = None) -> None:
        """Count ``applied`` as a fault that took effect, close both sockets, then say closed.

        Counted before the close: a client that sees its connection end may
        at once read ``applied`` (counted after, it could still read 0).
        """
        if self._shut_done:
            return
        self._shut_done = True
        if applied is not None:
            self.proxy._applied(applied)
        _close(self.client, how)
        _close(self.upstream, how)
        self.closed.set()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        try:
            conn = _Connection(proxy, self.request)
        except OSError:  # Redis is down: refuse the client as Redis would
            _close(self.request, Fault.RST)
            return
        proxy._add(conn)
        conn.run()

    def finish(self) -> None:  # the connection closed its own socket
        pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: Proxy

    def shutdown_request(self, request: Any) -> None:  # _Connection closes its sockets
        pass


class Proxy:
    """``Proxy(upstream_port).start()``; ``proxy.url`` for clients; ``proxy.inject(...)``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.partition_until = 0.0
        self.applied: Counter[Fault] = Counter()
        self.accepted = 0
        self._conns: set[_Connection] = set()
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting and close every connection (gracefully)."""
        self._server.shutdown()
        self._server.server_close()
        for conn in self.connections():
            conn.request(Fault.FIN)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connections(self) -> list[_Connection]:
        with self._lock:
            return [c for c in self._conns if not c.closed.is_set()]

    # -- faults -----------------------------------------------------------------------
    def inject(
        self,
        fault: Fault,
        *,
        count: int | None = None,
        seconds: float = 0.0,
        match: bytes | Iterable[bytes] = (),
        reply_match: bytes | Iterable[bytes] = (),
    ) -> int:
        """Apply ``fault`` to every connection now (``count=None``) or to the next ``count``.

        Returns how many connections it was applied to now (0 when armed).
        With ``count=None`` FIN and RST have taken effect when this returns;
        a stall holds until ``seconds`` from now (and holds new connections
        too); a dropped reply waits for each connection's next command.
        A counted DROP_REPLY with ``reply_match`` drops only a reply (to a
        command matching ``match``) that contains one of those byte
        strings, e.g. a fetch that returned messages, not an empty one.
        """
        if fault is Fault.STALL and seconds <= 0:
            raise ValueError("a stall needs seconds > 0")
        matches = (match,) if isinstance(match, bytes) else tuple(match)
        replies = (reply_match,) if isinstance(reply_match, bytes) else tuple(reply_match)
        if replies and (fault is not Fault.DROP_REPLY or count is None):
            raise ValueError("reply_match applies to a counted DROP_REPLY only")
        if count is not None:
            if count < 1:
                raise ValueError("count must be at least 1")
            with self._lock:
                self._armed.append(_Armed(fault, count, seconds, matches, replies))
            return 0
        if matches:
            raise ValueError("match applies to counted faults only (count=N)")
        conns = self.connections()
        if fault is Fault.STALL:
            self.partition_until = time.monotonic() + seconds
            for conn in conns:
                conn.wake()
            with self._changed:
                self.applied[fault] += 1
                self._changed.notify_all()
            return len(conns)
        for conn in conns:
            conn.request(fault)
        if fault in (Fault.FIN, Fault.RST):
            for conn in conns:
                conn.closed.wait(5)
        return len(conns)

    def fin(self, count: int | None = None, match: bytes | Iterable[bytes] = ()) -> int:
        return self.inject(Fault.FIN, count=count, match=match)

    def rst(self, count: int | None = None, match: bytes | Iterable[bytes] = ()) -> int:
        return self.inject(Fault.RST, count=count, match=match)

    def stall(
        self, seconds: float, count: int | None = None, match: bytes | Iterable[bytes] = ()
    ) -> int:
        return self.inject(Fault.STALL, count=count, seconds=seconds, match=match)

    def drop_reply(
        self,
        count: int | None = None,
        match: bytes | Iterable[bytes] = (),
        reply_match: bytes | Iterable[bytes] = (),
    ) -> int:
        return self.inject(Fault.DROP_REPLY, count=count, match=match, reply_match=reply_match)

    def stalled(self) -> bool:
        """True while a partition (a stall with count=None) lasts."""
        return time.monotonic() < self.partition_until

    def wait_applied(self, fault: Fault, times: int, timeout: float) -> bool:
        """Wait until ``fault`` has taken effect ``times`` times in all (since start)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.applied[fault] < times:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def disarm(self) -> None:
        """Forget counted faults that have not fired yet."""
        with self._lock:
            self._armed.clear()

    # -- called by connections ------------------------------------------------------------
    def _add(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.add(conn)
            self.accepted += 1

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _claim(self, data: bytes, conn: _Connection) -> _Armed | None:
        """The counted fault this command sets off, used up by one (None: none).

        A DROP_REPLY with a ``reply_match`` is not used up yet: the connection
        keeps it as a candidate until it sees the reply (``_claim_reply``).
        """
        if not self._armed:  # unlocked peek: the hot path stays cheap
            return None
        with self._lock:
            for armed in self._armed:
                if armed.matches(data):
                    if armed.reply_match:
                        conn.candidate = armed
                        return None
                    armed.left -= 1
                    if armed.left == 0:
                        self._armed.remove(armed)
                    return armed
        return None

    def _claim_reply(self, armed: _Armed, reply: bytes) -> bool:
        """Use up ``armed`` for this reply if it matches and is not used up yet."""
        if not armed.reply_matches(reply):
            return False
        with self._lock:
            if armed.left <= 0:
                return False
            armed.left -= 1
            if armed.left == 0 and armed in self._armed:
                self._armed.remove(armed)
            return True

    def _applied(self, fault: Fault) -> None:
        with self._changed:
            self.applied[fault] += 1
            self._changed.notify_all()
