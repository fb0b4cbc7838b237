"""The dead letters page: what could not run, with why; requeue or delete them.

Browsing reads one page at a time (``sources.dead_letter_page``: at most a
page and one entry per queue, never a whole stream), newest first, filtered
by queue. A row's buttons act on it at once; acting on several goes
through a confirmation page first, as Django's bulk delete does.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_taskq.broker import keys
from django_taskq.monitor.pages import display, sources
from django_taskq.monitor.pages.base import LiveAdmin

PER_PAGE = 50

#: The operations, and what their buttons and messages say.
OPERATIONS = {
    "requeue": gettext_lazy("Requeue"),
    "delete": gettext_lazy("Delete"),
}


def entry_key(queue: str, entry_id: str) -> str:
    """How a form names one dead letter: ``"<queue> <entry id>"`` (neither holds a space)."""
    return f"{queue} {entry_id}"


def parse_entry_key(value: str) -> tuple[str, str] | None:
    """``(queue, entry id)`` of a form's value, or None if it is not one."""
    queue, _, entry_id = value.rpartition(" ")
    if keys.QUEUE_NAME.match(queue) and sources.ENTRY_ID.match(entry_id):
        return queue, entry_id
    return None


def dead_row(fields: dict[str, Any]) -> dict[str, Any]:
    """A dead letter as the page shows it, whatever its fields hold."""
    shown = sources.describe(fields.get("i"), fields.get("b"))
    at: float | None
    try:
        at = float(fields.get("at", ""))
    except ValueError:
        at = None
    return {
        "key": entry_key(fields["queue"], fields["entry_id"]),
        "queue": fields["queue"],
        "entry_id": fields["entry_id"],
        "shown": shown,
        "readable": shown.task != sources.UNREADABLE,
        "reason": display.preview(fields.get("reason", ""), 500),
        "deliveries": fields.get("dc", ""),
        "at": display.moment(at) or display.entry_moment(fields["entry_id"]),
    }


class DeadLetterAdmin(LiveAdmin):
    """Dead letters: browse by queue with their reasons; requeue or delete, one or many."""

    fragment_template = "admin/django_taskq/deadletter/live.html"
    refresh_seconds = None  # a list with checkboxes must not change under the user's hand

    def page_urls(self) -> list[URLPattern]:
        return [path("act/", self.acting(self.act_view), name=self.url_name("act"))]

    def read_live(self, request: HttpRequest) -> dict[str, Any]:
        counts = {s.name: s.dead for s in sources.queue_stats()}
        queue = request.GET.get("queue", "")
        if queue not in counts:
            queue = ""
        before = request.GET.get("before") or None
        page = sources.dead_letter_page([queue] if queue else sorted(counts), PER_PAGE, before)
        return {
            "queue": queue,
            "filters": [(name, n) for name, n in sorted(counts.items()) if n],
            "total": counts[queue] if queue else sum(counts.values()),
            "rows": [dead_row(fields) for fields in page.rows],
            "newest_url": "?" + urlencode({"queue": queue}) if before else "",
            "older_url": "?" + urlencode({"queue": queue, "before": page.next_cursor})
            if page.next_cursor
            else "",
            "operations": list(OPERATIONS.items()),
        }

    def act_view(self, request: HttpRequest) -> HttpResponse:
        """Requeue or delete the POSTed dead letters; several need a confirmation first."""
        operation = request.POST.get("op", "")
        queue = request.POST.get("queue", "")
        back = self.reverse_page() + ("?" + urlencode({"queue": queue}) if queue else "")
        entries = [parse_entry_key(v) for v in request.POST.getlist("entry")]
        chosen = [e for e in entries if e is not None]
        if operation not in OPERATIONS:
            self.message_user(request, _("Choose requeue or delete."), messages.WARNING)
            return HttpResponseRedirect(back)
        if not chosen or len(chosen) != len(entries):
            self.message_user(
                request, _("Select dead letters first (by their boxes)."), messages.WARNING
            )
            return HttpResponseRedirect(back)
        if len(chosen) > 1 and request.POST.get("confirmed") != "yes":
            context = self.base_context(
                request, _("%(op)s dead letters?") % {"op": OPERATIONS[operation]}
            )
            context.update(
                operation=operation,
                operation_label=OPERATIONS[operation],
                entries=[
                    {
                        "key": entry_key(q, i),
                        "queue": q,
                        "entry_id": i,
                        "at": display.entry_moment(i),
                    }
                    for q, i in chosen
                ],
                queue=queue,
            )
            return TemplateResponse(request, "admin/django_taskq/deadletter/confirm.html", context)
        self._apply(request, operation, chosen)
        return HttpResponseRedirect(back)

    def _apply(self, request: HttpRequest, operation: str, chosen: list[tuple[str, str]]) -> None:
        refused: dict[tuple[str, str], str] = {}
        try:
            if operation == "requeue":
                # What no worker could decode would only come back here: say why instead.
                refused = sources.requeue_refusals(chosen)
                chosen = [c for c in chosen if c not in refused]
                done = sources.requeue_dead(chosen) if chosen else 0
                text = ngettext(
                    "Requeued %(count)d dead letter.", "Requeued %(count)d dead letters.", done
                )
            else:
                done = sources.delete_dead(chosen)
                text = ngettext(
                    "Deleted %(count)d dead letter.", "Deleted %(count)d dead letters.", done
                )
        except Exception as exc:  # Redis down or refusing odd data: say it, never a 500
            self.message_user(
                request, self.problem(exc, f"{operation} of dead letters"), messages.ERROR
            )
            return
        for (queue, entry_id), reason in refused.items():
            self.message_user(
                request,
                _(
                    "Not requeued: dead letter %(entry)s of queue %(queue)s: %(reason)s. A worker "
                    "would dead-letter it again; delete it, or send the task anew."
                )
                % {"entry": entry_id, "queue": queue, "reason": reason},
                messages.ERROR,
            )
        if refused and not chosen:
            return
        level = messages.SUCCESS if done == len(chosen) else messages.WARNING
        message = text % {"count": done}
        if done < len(chosen):
            gone = len(chosen) - done
            message += " " + ngettext(
                "%(gone)d was gone already.", "%(gone)d were gone already.", gone
            ) % {"gone": gone}
        self.message_user(request, message, level)
