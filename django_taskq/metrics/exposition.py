"""Serving the metrics: the bearer token, the text format, and the worker's own HTTP port.

Both ways out, the Django view (``django_taskq.urls``, route ``taskq-metrics``)
and ``taskq_worker --metrics-port``, serve the same registry
(``metrics.prometheus.registry()``) and check the same token:
TASKQ_METRICS_TOKEN, sent by Prometheus as ``Authorization: Bearer <token>``
and compared in constant time. Without the token setting, scraping is open.

``prometheus_client`` is an optional dependency (the ``[metrics]`` extra):
nothing here imports it before it is needed, and ``require()`` turns its
absence into an error that says what to install.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.core.exceptions import ImproperlyConfigured

from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.metrics")

MISSING = (
    "django_taskq's Prometheus metrics need prometheus_client, which is not installed: "
    "pip install 'django-taskq-streams[metrics]'"
)

#: Sent with a 401, as RFC 6750 asks.
CHALLENGE = 'Bearer realm="django_taskq metrics"'


class MetricsUnavailable(ImproperlyConfigured):
    """prometheus_client is not installed (the ``[metrics]`` extra)."""


def available() -> bool:
    """True if prometheus_client can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> Any:
    """The ``metrics.prometheus`` module; MetricsUnavailable naming the extra if it cannot load."""
    try:
        from django_taskq.metrics import prometheus
    except ImportError as exc:
        raise MetricsUnavailable(MISSING) from exc
    return prometheus


def authorized(header: str | None) -> bool:
    """Whether an ``Authorization`` header may scrape: always, when no token is set."""
    token = taskq_settings.METRICS_TOKEN
    if token is None or not str(token).strip():
        return True  # open (manage.py check warns about an empty one: taskq.W004)
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), str(token).encode())


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition of every metric (OpenMetrics when Prometheus asks for it) and its type."""
    registry = require().registry()
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    output: bytes = encoder(registry)
    return output, content_type


# -- the worker's port ---------------------------------------------------------------

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def wsgi_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """prometheus_client's WSGI app behind the bearer token (it has no auth of its own)."""
    if not authorized(environ.get("HTTP_AUTHORIZATION")):
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", CHALLENGE)],
        )
        return [b"401 Unauthorized: send Authorization: Bearer <TASKQ_METRICS_TOKEN>\n"]
    registry = require().registry()
    from prometheus_client.exposition import make_wsgi_app

    app: Any = make_wsgi_app(registry)
    body: Iterable[bytes] = app(environ, start_response)
    return body


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per scrape, never joined at shutdown."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on the worker's stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """The HTTP server of ``taskq_worker --metrics-port``, on a thread of the worker parent.

    The socket is bound in the constructor, so a port in use fails the
    command before the worker starts. Prefork children are forked from the
    parent after it listens: each closes its copy of the socket at once,
    so only the parent serves and the port is free as soon as it exits.
    """

    def __init__(self, port: int, addr: str = "0.0.0.0") -> None:
        require()
        family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        server_class = type("MetricsHTTPServer", (_Server,), {"address_family": family[0][0]})
        self.httpd: WSGIServer = make_server(
            addr, port, wsgi_app, server_class=server_class, handler_class=_QuietHandler
        )
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="taskq-metrics", daemon=True
        )
        self._parent = os.getpid()
        os.register_at_fork(after_in_child=self._close_in_child)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/metrics"

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (again: nothing happens)."""
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join()
        self.httpd.server_close()

    def _close_in_child(self) -> None:
        if os.getpid() != self._parent:
            self.httpd.socket.close()
