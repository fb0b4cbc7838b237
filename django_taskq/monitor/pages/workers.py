"""The workers page: every worker still remembered, what it runs now, and how it has done.

Reads ``workers()`` (``monitor.workers``): online ones first, offline ones
(no beat within the heartbeat timeout, kept until TASKQ_WORKER_FORGET_AFTER)
faded below them. With the change permission a user may ask an online
worker to shut down (after a confirmation page) or, for a prefork worker,
to grow or shrink its pool by one process; the page says what the worker
replied, or that it did not reply within TASKQ_CONTROL_TIMEOUT.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from django_taskq.monitor.pages import display, sources
from django_taskq.monitor.pages.base import LiveAdmin

#: The operations on a worker, and what their buttons say.
OPERATIONS = {
    "shutdown": gettext_lazy("Shut down"),
    "pool_grow": gettext_lazy("Pool +1"),
    "pool_shrink": gettext_lazy("Pool −1"),  # noqa: RUF001 - a minus sign, as +1 beside it
}


def worker_row(worker: sources.WorkerState, now: float) -> dict[str, Any]:
    """A worker as the page shows it."""
    return {
        "worker": worker,
        "anchor": display.anchor(worker.name),
        "started": display.moment(worker.started),
        "last_beat": display.moment(worker.last_beat),
        "beat_age": display.duration(now - worker.last_beat) if worker.last_beat else "",
        "load": " ".join(f"{x:.2f}" for x in worker.load) if worker.load else "",
        "running": [
            {"task": task, "runtime": display.duration(now - task.started)}
            for task in sorted(worker.running, key=lambda t: t.started)
        ],
        "resizable": worker.online and worker.pool == "prefork",
    }


def describe_result(result: Any) -> str:
    """A worker's reply to a control request, in a few words."""
    if isinstance(result, dict) and isinstance(result.get("concurrency"), int):
        n = result["concurrency"]
        return ngettext("pool now has %(n)d process", "pool now has %(n)d processes", n) % {"n": n}
    return str(result)


class WorkerAdmin(LiveAdmin):
    """Workers: host, pool, queues, heartbeats, counts, the tasks running now; control."""

    fragment_template = "admin/django_taskq/worker/live.html"
    refresh_seconds = 5

    def page_urls(self) -> list[URLPattern]:
        return [path("act/", self.acting(self.act_view), name=self.url_name("act"))]

    def read_live(self, request: HttpRequest) -> dict[str, Any]:
        now = time.time()
        found = sorted(sources.workers(), key=lambda w: (not w.online, w.name))
        return {
            "workers": [worker_row(w, now) for w in found],
            "online": sum(1 for w in found if w.online),
            "operations": OPERATIONS,
        }

    def json_data(self, live: dict[str, Any]) -> dict[str, Any]:
        return {"workers": [row["worker"].as_dict() for row in live["workers"]]}

    def act_view(self, request: HttpRequest) -> HttpResponse:
        """Ask one worker to shut down (confirmed first) or to resize its pool."""
        operation = request.POST.get("op", "")
        name = request.POST.get("worker", "").strip()
        if operation not in OPERATIONS or not name:
            self.message_user(request, _("Choose a worker and an operation."), messages.WARNING)
            return HttpResponseRedirect(self.reverse_page())
        if operation == "shutdown" and request.POST.get("confirmed") != "yes":
            context = self.base_context(request, _("Shut down %(worker)s?") % {"worker": name})
            context["worker_name"] = name
            return TemplateResponse(request, "admin/django_taskq/worker/confirm.html", context)
        try:
            if operation == "shutdown":
                replies = sources.shutdown_worker(name)
            else:
                replies = sources.pool_resize(name, 1 if operation == "pool_grow" else -1)
        except ValueError as exc:  # control.BadRequest: its message names the problem
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(self.reverse_page())
        except Exception as exc:  # Redis down or answering oddly: say it, never a 500
            self.message_user(request, self.problem(exc, f"{operation} of {name}"), messages.ERROR)
            return HttpResponseRedirect(self.reverse_page())
        self._report(request, replies)
        return HttpResponseRedirect(self.reverse_page())

    def _report(self, request: HttpRequest, replies: sources.Replies) -> None:
        for reply in replies.replies:
            if reply.ok:
                text = _("%(worker)s: %(result)s") % {
                    "worker": reply.hostname,
                    "result": describe_result(reply.result),
                }
                self.message_user(request, text, messages.SUCCESS)
            else:
                text = _("%(worker)s refused: %(error)s") % {
                    "worker": reply.hostname,
                    "error": reply.error,
                }
                self.message_user(request, text, messages.ERROR)
        if replies.missing:
            text = _(
                "No reply from %(workers)s within %(timeout)s s (TASKQ_CONTROL_TIMEOUT): "
                "it may be busy, stuck or gone."
            ) % {"workers": ", ".join(replies.missing), "timeout": f"{replies.timeout:g}"}
            self.message_user(request, text, messages.WARNING)
