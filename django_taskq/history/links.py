"""Admin URLs of history rows, for the pages and messages that name a task.

A message that names a task just sent (Run now, a retry) cannot link to its
row's change page: the recorder writes the row a moment later. It links to
``by-task-id/<id>/`` instead, which opens the row once it exists (see
``TaskRecordAdmin.by_task_id_view``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _


def record_url(task_id: str) -> str:
    """The admin URL that shows ``task_id``'s history row (once the recorder wrote it)."""
    return reverse("admin:django_taskq_taskrecord_by_task_id", args=[task_id])


def change_url(pk: int) -> str:
    """The detail page of the history row ``pk``."""
    return reverse("admin:django_taskq_taskrecord_change", args=[pk])


def changelist_url(**lookup: str) -> str:
    """The history list, filtered by ``lookup`` (field or filter parameters)."""
    return reverse("admin:django_taskq_taskrecord_changelist") + "?" + urlencode(lookup)


def task_links(task_ids: Iterable[str], shown: int = 20) -> SafeString:
    """Task ids as links to their history rows, the first ``shown`` of them."""
    ids = list(task_ids)
    links = format_html_join(", ", '<a href="{}">{}</a>', ((record_url(i), i) for i in ids[:shown]))
    if len(ids) > shown:
        return format_html("{} {}", links, _("and %(count)d more") % {"count": len(ids) - shown})
    return links
