"""What every live page shares: permissions, URLs, rendering, refresh and Redis failures.

A live page is the changelist of an unmanaged model with no table
(``monitor/models.py``), so the admin index lists it and Django makes its
permissions. ``LiveAdmin`` replaces the model's URLs with the page's own
views (the default ones would query the missing table), refuses add and
delete, lets a user with the view permission look and one with the change
permission act, and answers ``?format=json`` with the refreshable part of
the page, rendered, for the small script that refreshes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from django_taskq.broker.errors import REDIS_DOWN, unavailable
from django_taskq.exceptions import BrokerUnavailable

logger = logging.getLogger("django_taskq.admin")

if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = admin.ModelAdmin

View = Callable[..., HttpResponse]


def redis_problem(exc: Exception) -> str:
    """The sentence a page shows instead of its data when reading Redis failed."""
    if isinstance(exc, BrokerUnavailable):
        return str(exc)
    if isinstance(exc, REDIS_DOWN):
        return str(unavailable("read the live view", exc))
    if isinstance(exc, redis.RedisError):
        return _(
            "Redis answered with an error: %(error)s. A key of django_taskq may hold "
            "something it did not write."
        ) % {"error": exc}
    return _(
        "The data in Redis could not be shown (%(error)s); the log of django_taskq.admin "
        "has the details."
    ) % {"error": f"{type(exc).__name__}: {exc}"}


class LiveAdmin(ModelAdminBase):
    """The admin of a live page: one changelist view, the page's own views, no rows."""

    #: The part of the page that refreshes (the page around it is live/change_list.html).
    fragment_template = ""
    #: Seconds between refreshes of the page by its script; None: no refresh.
    refresh_seconds: int | None = None

    # -- permissions: view to look, change to act, never add or delete rows ----------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def require_change(self, request: HttpRequest) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied

    # -- URLs --------------------------------------------------------------------------
    def url_name(self, name: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{name}"

    def page_urls(self) -> list[URLPattern]:
        """The page's views beside the changelist (``acting`` ones go through ``acting()``)."""
        return []

    def get_urls(self) -> list[URLPattern]:
        # Only these: the default change, delete and history views would query the table.
        return [
            *self.page_urls(),
            path("", self.looking(self.changelist_view), name=self.url_name("changelist")),
        ]

    def looking(self, view: View) -> View:
        """``view`` for users with the view permission (403 otherwise), logged in, CSRF-safe."""

        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            self.require_view(request)
            return view(request, *args, **kwargs)

        return self.admin_site.admin_view(checked)  # type: ignore[no-any-return]

    def acting(self, view: View, confirm_on_get: bool = False) -> View:
        """``view`` for users with the change permission; only POST acts.

        With ``confirm_on_get`` a GET shows the view's confirmation page
        (which POSTs back); otherwise a GET is refused (405). CSRF is checked
        by ``admin_view`` for every POST.
        """

        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            self.require_change(request)
            if request.method != "POST" and not (confirm_on_get and request.method == "GET"):
                return HttpResponseNotAllowed(["POST"])
            return view(request, *args, **kwargs)

        return self.admin_site.admin_view(checked)  # type: ignore[no-any-return]

    def reverse_page(self, name: str = "changelist", model: str | None = None) -> str:
        """URL of one of this app's admin views, "" if it is not registered."""
        model_name = model or self.opts.model_name
        try:
            return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{model_name}_{name}")
        except NoReverseMatch:
            return ""

    def link_to(self, request: HttpRequest, model_name: str) -> str:
        """The changelist URL of another page of this app, "" if this user may not see it."""
        user: Any = request.user
        label = self.opts.app_label
        if user.has_perm(f"{label}.view_{model_name}") or user.has_perm(
            f"{label}.change_{model_name}"
        ):
            return self.reverse_page("changelist", model_name)
        return ""

    def links(self, request: HttpRequest) -> dict[str, str]:
        """URLs of the pages a live page links to, each "" when the user may not see it."""
        queues_url = self.link_to(request, "queue")
        return {
            "queues_url": queues_url,
            "queue_messages_url": self.reverse_page("messages", "queue") if queues_url else "",
            "dead_letters_url": self.link_to(request, "deadletter"),
            "workers_url": self.link_to(request, "worker"),
            "history_url": self.link_to(request, "taskrecord"),
        }

    # -- rendering ---------------------------------------------------------------------
    def base_context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            "has_change_permission": self.has_change_permission(request),
            **self.links(request),
        }

    def read_live(self, request: HttpRequest) -> dict[str, Any]:
        """Read Redis and return what the fragment shows (each page defines it)."""
        raise NotImplementedError

    def problem(self, exc: Exception, what: str) -> str:
        """The sentence to show for ``exc``; logged with its traceback unless Redis is down.

        Pages catch every exception of a read or an action so that nothing
        in Redis (or Redis being gone) makes a 500: a reader that fails on
        data it did not expect is a bug to fix, so its traceback goes to the
        log of ``django_taskq.admin``, and the page says what failed.
        """
        if not isinstance(exc, BrokerUnavailable):
            logger.exception("live admin: %s failed", what)
        return redis_problem(exc)

    def live_context(self, request: HttpRequest) -> dict[str, Any]:
        """``read_live()``, or ``redis_error`` with the sentence to show when it failed."""
        try:
            return self.read_live(request)
        except Exception as exc:  # never a 500 for what Redis holds: say it, log it
            return {"redis_error": self.problem(exc, f"reading the {self.opts.model_name} page")}

    def json_data(self, live: dict[str, Any]) -> dict[str, Any]:
        """The numbers of the page for ``?format=json`` beside its HTML (none by default)."""
        return {}

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self.require_view(request)
        live = self.live_context(request)
        title = capfirst(str(self.opts.verbose_name_plural))
        context = {**self.base_context(request, title), **live}
        context.update(extra_context or {})
        if request.GET.get("format") == "json":
            html = render_to_string(self.fragment_template, context, request)
            if "redis_error" in live:
                return JsonResponse({"html": html, "error": live["redis_error"]}, status=503)
            return JsonResponse({"html": html, "data": self.json_data(live)})
        query = request.GET.copy()
        query["format"] = "json"
        context.update(
            refresh_seconds=self.refresh_seconds,
            refresh_url=f"{request.path}?{query.urlencode()}",
            fragment_template=self.fragment_template,
        )
        templates = [
            f"admin/{self.opts.app_label}/{self.opts.model_name}/change_list.html",
            f"admin/{self.opts.app_label}/live/change_list.html",
        ]
        return TemplateResponse(
            request, templates, context, status=503 if "redis_error" in live else 200
        )
