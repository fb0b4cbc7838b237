"""Who may call the HTTP endpoints: TASKQ_AUTH_HANDLERS, and three handlers to put there.

A handler is a callable that takes the request and returns None to let it
through, or a response to turn it away. The endpoints try the handlers
configured for them in order; the first that accepts wins, and when all
refuse, the first refusal is the answer. With no handler configured an
endpoint answers 403: these endpoints run tasks and delete history, so they
are closed until the project says how callers prove who they are.

The setting takes the shape django-tasks-redis's ``AUTH_HANDLERS`` option
has, so its ``OPTIONS`` carry over unchanged into a ``TaskqBackend``'s:

.. code-block:: python

    TASKQ_AUTH_HANDLERS = [
        "django_taskq.endpoints.auth.StaffOnlyAuth",
        {
            "HANDLER": "django_taskq.endpoints.auth.SharedSecretAuth",
            "OPTIONS": {"TOKEN_ENV": "TASKQ_CRON_TOKEN"},
            "ENDPOINTS": ["run", "run_one"],
        },
    ]

Secrets are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string

from django_taskq.conf import taskq_settings

#: The endpoint names an ``ENDPOINTS`` list may hold.
ENDPOINTS = frozenset({"run", "run_one", "status", "purge", "execute"})

Handler = Callable[[HttpRequest], HttpResponse | None]


def refusal(message: str, status: int = 401) -> JsonResponse:
    """The JSON answer of a handler that turns a request away."""
    return JsonResponse({"error": message}, status=status)


class AuthHandler:
    """A handler configured by an ``OPTIONS`` dict; subclasses write ``authenticate``."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})

    def __call__(self, request: HttpRequest) -> HttpResponse | None:
        return self.authenticate(request)

    def authenticate(self, request: HttpRequest) -> HttpResponse | None:
        """None to let ``request`` through, or the response that turns it away."""
        raise NotImplementedError

    def secret(self, name: str) -> str:
        """The secret given as option ``name``, or by name in ``<name>_SETTING`` / ``<name>_ENV``.

        A setting or an environment variable keeps the secret out of the
        settings file; naming one that is empty is a configuration error,
        not an open endpoint.
        """
        here = type(self).__name__
        if value := self.options.get(name):
            return str(value)
        if setting := self.options.get(f"{name}_SETTING"):
            if not (value := getattr(settings, setting, None)):
                raise ImproperlyConfigured(
                    f"{here}: the setting {setting} ({name}_SETTING) is not set or empty"
                )
            return str(value)
        if variable := self.options.get(f"{name}_ENV"):
            if not (value := os.environ.get(variable)):
                raise ImproperlyConfigured(
                    f"{here}: the environment variable {variable} ({name}_ENV) is not set or empty"
                )
            return value
        raise ImproperlyConfigured(
            f"{here} needs {name}, {name}_SETTING or {name}_ENV in its OPTIONS "
            "(TASKQ_AUTH_HANDLER_OPTIONS, or the OPTIONS of its TASKQ_AUTH_HANDLERS entry)"
        )


class SharedSecretAuth(AuthHandler):
    """A request carrying a token: ``Authorization: Bearer <token>`` by default.

    Options: ``TOKEN`` / ``TOKEN_SETTING`` / ``TOKEN_ENV`` (one of them);
    ``HEADER`` (default ``Authorization``); ``SCHEME`` (default ``Bearer``;
    ``""`` compares the header's whole value).
    """

    def authenticate(self, request: HttpRequest) -> HttpResponse | None:
        expected = self.secret("TOKEN")
        header = str(self.options.get("HEADER", "Authorization"))
        scheme = str(self.options.get("SCHEME", "Bearer"))
        sent = request.headers.get(header)
        if not sent:
            return refusal(f"Missing {header} header")
        if scheme:
            if not sent.startswith(f"{scheme} "):
                return refusal(f"Invalid {header} header: expected '{scheme} <token>'")
            sent = sent[len(scheme) + 1 :]
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return refusal("Invalid token")
        return None


def signature(
    secret: str | bytes,
    timestamp: int | str,
    method: str,
    path: str,
    body: bytes | str = b"",
    algorithm: str = "sha256",
) -> str:
    """The hex HMAC that ``HMACAuth`` expects for a request; callers sign with this.

    What is signed: the timestamp, the method, the full path with its query
    string, and the body, joined by newlines.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    payload = b"\n".join(
        [
            str(timestamp).encode(),
            method.upper().encode(),
            path.encode(),
            body.encode() if isinstance(body, str) else body,
        ]
    )
    return hmac.new(key, payload, getattr(hashlib, algorithm)).hexdigest()


#: django-tasks-redis's name for ``signature``, for callers that sign requests.
build_signature = signature


class HMACAuth(AuthHandler):
    """A request signed with a shared secret, refused once its timestamp is too old.

    The caller sends ``X-Task-Timestamp`` (Unix seconds) and
    ``X-Task-Signature`` (``signature(...)``). Options: ``SECRET`` /
    ``SECRET_SETTING`` / ``SECRET_ENV``; ``HEADER``; ``TIMESTAMP_HEADER``;
    ``MAX_AGE`` (seconds, default 300; 0: no replay check); ``ALGORITHM``
    (a hashlib name, default ``sha256``).
    """

    def authenticate(self, request: HttpRequest) -> HttpResponse | None:
        secret = self.secret("SECRET")
        header = str(self.options.get("HEADER", "X-Task-Signature"))
        stamp_header = str(self.options.get("TIMESTAMP_HEADER", "X-Task-Timestamp"))
        max_age = float(self.options.get("MAX_AGE", 300))
        algorithm = str(self.options.get("ALGORITHM", "sha256"))
        if not hasattr(hashlib, algorithm):
            raise ImproperlyConfigured(f"HMACAuth ALGORITHM {algorithm!r} is not a hashlib name")
        sent = request.headers.get(header)
        if not sent:
            return refusal(f"Missing {header} header")
        stamp = request.headers.get(stamp_header)
        if not stamp:
            return refusal(f"Missing {stamp_header} header")
        if max_age:
            try:
                age = abs(time.time() - int(stamp))
            except ValueError:
                return refusal(f"Invalid {stamp_header} header: expected Unix seconds")
            if age > max_age:
                return refusal("Signature has expired")
        expected = signature(
            secret, stamp, str(request.method), request.get_full_path(), request.body, algorithm
        )
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return refusal("Invalid signature")
        return None


class StaffOnlyAuth(AuthHandler):
    """A request from a logged-in staff user (the admin's session cookie).

    A browser sends the session cookie with any request, including a form
    another site makes it post, so a POST must also pass Django's CSRF
    check (the ``X-CSRFToken`` header, or a ``csrfmiddlewaretoken`` field),
    as the admin's own forms do; the views themselves are exempt from CSRF
    because a scheduler's token or signature is not a cookie.
    """

    def authenticate(self, request: HttpRequest) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if user is None:
            raise ImproperlyConfigured(
                "StaffOnlyAuth needs django.contrib.auth.middleware.AuthenticationMiddleware "
                "in MIDDLEWARE"
            )
        if not user.is_authenticated:
            return refusal("Authentication required")
        if not user.is_staff:
            return refusal("Staff privileges required", status=403)
        return _csrf(request)


def _csrf(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check of ``request`` (None: it passes, or the method is safe)."""
    from django.middleware.csrf import CsrfViewMiddleware

    def view(request: HttpRequest) -> HttpResponse:  # not csrf_exempt, so it is checked
        return HttpResponse()

    check = CsrfViewMiddleware(view)
    check.process_request(request)  # reads the CSRF cookie, as the middleware would
    if check.process_view(request, view, (), {}) is None:
        return None
    return refusal(
        "CSRF check failed: a session's POST must send the csrftoken cookie's value in an "
        "X-CSRFToken header (or a csrfmiddlewaretoken field)",
        status=403,
    )


def _entry(entry: Any, defaults: dict[str, Any]) -> tuple[Handler, frozenset[str] | None]:
    """One TASKQ_AUTH_HANDLERS entry as (handler, the endpoints it guards or None for all)."""
    options = dict(defaults)
    endpoints: frozenset[str] | None = None
    target = entry
    if isinstance(entry, dict):
        if "HANDLER" not in entry:
            raise ImproperlyConfigured(
                f"TASKQ_AUTH_HANDLERS entry {entry!r}: a dict needs a HANDLER key "
                "(a dotted path), with OPTIONS and ENDPOINTS if wanted"
            )
        target = entry["HANDLER"]
        options.update(entry.get("OPTIONS") or {})
        if entry.get("ENDPOINTS") is not None:
            endpoints = frozenset(entry["ENDPOINTS"])
            if unknown := endpoints - ENDPOINTS:
                raise ImproperlyConfigured(
                    f"TASKQ_AUTH_HANDLERS ENDPOINTS {sorted(unknown)}: not endpoints; "
                    f"name some of {sorted(ENDPOINTS)}"
                )
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            theirs = "django_tasks_redis.auth."
            hint = (
                f"; write django_taskq.endpoints.auth.{target[len(theirs) :]}"
                if target.startswith(theirs)
                else ""
            )
            raise ImproperlyConfigured(
                f"TASKQ_AUTH_HANDLERS: cannot import {target!r}: {exc}{hint}"
            ) from exc
    make: Callable[..., Any] = target
    handler: Any = make(options) if inspect.isclass(target) else target
    if not callable(handler):
        raise ImproperlyConfigured(f"TASKQ_AUTH_HANDLERS: {handler!r} is not callable")
    return handler, endpoints


def handlers() -> list[tuple[Handler, frozenset[str] | None]]:
    """Each configured handler and the endpoints it guards (ImproperlyConfigured if wrong)."""
    entries: Any = taskq_settings.AUTH_HANDLERS or []
    if isinstance(entries, str | dict) or callable(entries):
        entries = [entries]
    if not isinstance(entries, list | tuple):
        raise ImproperlyConfigured(
            f"{taskq_settings.origin('AUTH_HANDLERS')}={entries!r} must be a list of handlers "
            "(dotted paths, callables or {'HANDLER': ...} dicts)"
        )
    defaults = taskq_settings.AUTH_HANDLER_OPTIONS or {}
    if not isinstance(defaults, dict):
        raise ImproperlyConfigured(
            f"{taskq_settings.origin('AUTH_HANDLER_OPTIONS')}={defaults!r} must be a dict of "
            "options given to every handler"
        )
    defaults = dict(defaults)
    return [_entry(entry, defaults) for entry in entries]


def handlers_for(endpoint: str) -> list[Handler]:
    """The handlers that guard ``endpoint``, in their configured order."""
    return [handler for handler, only in handlers() if only is None or endpoint in only]


def check(request: HttpRequest, endpoint: str) -> HttpResponse | None:
    """None if some handler accepts ``request`` for ``endpoint``; else the answer to send."""
    guards: Iterable[Handler] = handlers_for(endpoint)
    first: HttpResponse | None = None
    tried = False
    for handler in guards:
        tried = True
        answer = handler(request)
        if answer is None:
            return None
        first = first or answer
    if not tried:
        return refusal(
            f"The {endpoint} endpoint is closed: set TASKQ_AUTH_HANDLERS (or AUTH_HANDLERS "
            "in the TaskqBackend's OPTIONS) to say who may call it (docs/http-endpoints.md)",
            status=403,
        )
    assert first is not None
    return first


__all__ = [
    "ENDPOINTS",
    "AuthHandler",
    "HMACAuth",
    "SharedSecretAuth",
    "StaffOnlyAuth",
    "build_signature",
    "check",
    "handlers",
    "handlers_for",
    "signature",
]
