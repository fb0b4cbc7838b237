"""Sick Redis servers for fault tests, on 127.0.0.1 only.

- ``SilentServer``: accepts connections and reads what arrives, never answers
  (a Redis stuck in a long script, swapping, or a proxy whose backend died).
- ``Blackhole``: a listening socket whose accept queue is full, so the kernel
  drops new SYNs and a connect hangs (a host that drops packets).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time


class SilentServer:
    """A TCP server that accepts every connection and never replies."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        peers: list[socket.socket] = []
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    peer, _ = self._listener.accept()
                    peer.setblocking(False)
                    peers.append(peer)
                    self.connections += 1
                    selector.register(peer, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if data:
                    self.received += data
                else:
                    selector.unregister(sock)
                    sock.close()
        for peer in peers:
            peer.close()
        selector.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Blackhole:
    """A port where a TCP connect hangs: the listener's accept queue is kept full."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._fillers: list[socket.socket] = []
        # Connect until one hangs: from then on the kernel drops every SYN.
        for _ in range(16):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.settimeout(0.3)
            try:
                filler.connect(("127.0.0.1", self.port))
            except TimeoutError:
                filler.close()
                return
            self._fillers.append(filler)
        self.close()
        raise RuntimeError("this kernel does not drop SYNs to a full accept queue")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def connect_hangs(self, seconds: float = 0.3) -> bool:
        """True if a connect to this port does not complete within ``seconds``."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(seconds)
        started = time.monotonic()
        try:
            probe.connect(("127.0.0.1", self.port))
        except TimeoutError:
            return time.monotonic() - started >= seconds * 0.9
        finally:
            probe.close()
        return False

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
