"""The queues page: per queue and priority what waits, runs, is delayed or dead; peek; purge.

Reads ``queue_stats()`` and ``peek()`` (``monitor.queues``); purges with
``control.purge``. Each number links to where its messages can be seen:
ready and delayed ones to the queue's page, in-flight ones to the
consumers holding them, dead ones to the dead letters of the queue.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from django_taskq.broker import keys
from django_taskq.monitor.pages import display, sources
from django_taskq.monitor.pages.base import LiveAdmin

#: How many queued messages the queue's page shows of each kind (ready, delayed).
PEEK_DEFAULT = 50
PEEK_MAX = 500


def worker_of(consumer: str) -> str:
    """The worker a consumer belongs to: its name without the last ``:<index>`` part."""
    return consumer.rpartition(":")[0] or consumer


def message_row(message: sources.QueuedMessage) -> dict[str, Any]:
    """A queued message as the page shows it (``readable`` False: shown as unreadable)."""
    return {
        "message": message,
        "readable": message.task != sources.UNREADABLE,
        "eta": display.moment(message.eta),
        "queued_at": display.entry_moment(message.entry_id or ""),
        "args": display.preview(message.args),
        "kwargs": display.preview(message.kwargs),
    }


class QueueAdmin(LiveAdmin):
    """Queues: live counts per queue and priority, the first messages, and purge."""

    fragment_template = "admin/django_taskq/queue/live.html"
    refresh_seconds = 5

    def page_urls(self) -> list[URLPattern]:
        return [
            path("messages/", self.looking(self.messages_view), name=self.url_name("messages")),
            path(
                "purge/",
                self.acting(self.purge_view, confirm_on_get=True),
                name=self.url_name("purge"),
            ),
        ]

    # -- the list ------------------------------------------------------------------------
    def read_live(self, request: HttpRequest) -> dict[str, Any]:
        stats = sources.queue_stats()
        return {
            "queues": [self._row(s) for s in stats],
            "totals": {
                name: sum(getattr(s, name) for s in stats)
                for name in ("ready", "in_flight", "delayed", "dead")
            },
        }

    def _row(self, stats: sources.QueueStats) -> dict[str, Any]:
        return {
            "stats": stats,
            "oldest": display.duration(stats.oldest_age) if stats.oldest_age is not None else "",
            "next_eta": display.moment(stats.next_eta),
            "consumers": [
                {"name": name, "held": held, "anchor": display.anchor(worker_of(name))}
                for name, held in sorted(stats.consumers.items())
            ],
        }

    def json_data(self, live: dict[str, Any]) -> dict[str, Any]:
        return {"queues": [dataclasses.asdict(row["stats"]) for row in live["queues"]]}

    # -- one queue: its consumers and first messages --------------------------------------
    def _queue_param(self, request: HttpRequest) -> str:
        queue = request.GET.get("queue") or request.POST.get("queue") or ""
        if not keys.QUEUE_NAME.match(queue):
            raise Http404(_("No such queue: %(queue)s") % {"queue": queue[:200]})
        return queue

    def messages_view(self, request: HttpRequest) -> HttpResponse:
        queue = self._queue_param(request)
        try:
            limit = min(max(int(request.GET.get("limit", PEEK_DEFAULT)), 1), PEEK_MAX)
        except ValueError:
            limit = PEEK_DEFAULT
        context = self.base_context(request, _("Queue %(queue)s") % {"queue": queue})
        context.update(queue=queue, limit=limit)
        try:
            found = sources.queue_stats([queue])
            context.update(
                row=self._row(found[0]) if found else None,
                ready=[message_row(m) for m in sources.peek(queue, limit)],
                delayed=[message_row(m) for m in sources.peek(queue, limit, delayed=True)],
            )
        except Exception as exc:  # Redis down or holding the unexpected: say so, no 500
            context["redis_error"] = self.problem(exc, f"reading queue {queue}")
        return TemplateResponse(
            request,
            "admin/django_taskq/queue/messages.html",
            context,
            status=503 if "redis_error" in context else 200,
        )

    # -- purge ---------------------------------------------------------------------------
    def purge_view(self, request: HttpRequest) -> HttpResponse:
        queue = self._queue_param(request)
        if request.method == "POST":
            return self._purge(request, queue)
        context = self.base_context(request, _("Purge queue %(queue)s?") % {"queue": queue})
        context["queue"] = queue
        try:
            found = sources.queue_stats([queue])
            context["row"] = self._row(found[0]) if found else None
        except Exception as exc:  # the confirmation still works: the purge may succeed
            context["redis_error"] = self.problem(exc, f"reading queue {queue}")
        return TemplateResponse(
            request,
            "admin/django_taskq/queue/purge.html",
            context,
            status=503 if "redis_error" in context else 200,
        )

    def _purge(self, request: HttpRequest, queue: str) -> HttpResponse:
        try:
            removed = sources.purge(queue)
        except Exception as exc:  # Redis down or refusing: say it, never a 500
            self.message_user(request, self.problem(exc, f"purging {queue}"), messages.ERROR)
        else:
            self.message_user(
                request,
                ngettext(
                    "Purged %(count)d message from queue %(queue)s.",
                    "Purged %(count)d messages from queue %(queue)s.",
                    removed,
                )
                % {"count": removed, "queue": queue},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self.reverse_page())
