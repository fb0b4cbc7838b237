"""Template tags of the task history admin.

``taskq_date_hierarchy`` replaces Django's date hierarchy on the TaskRecord
changelist. Django's lists only the years, months or days that hold rows,
which it finds with ``SELECT DISTINCT date_trunc(...)`` over every row of
the period: on a history of a million rows sent this month, every page
view reads them all. This one reads the first and last send time of the
period shown (``MIN``/``MAX``, which an index on ``sent_at`` answers in two
probes) and offers every year, month or day between them. A day without
tasks may be offered; none with tasks is missed. The links and the
filtering are Django's own (``sent_at__year`` and so on).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.db import models
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

register = template.Library()


def _local(value: dt.datetime) -> dt.datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


def _months(first: dt.datetime, last: dt.datetime) -> list[dt.date]:
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(dt.date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _days(first: dt.datetime, last: dt.datetime) -> list[dt.date]:
    count = (last.date() - first.date()).days + 1
    return [first.date() + dt.timedelta(days=i) for i in range(count)]


@register.inclusion_tag("admin/date_hierarchy.html", name="taskq_date_hierarchy")
def date_hierarchy(cl: Any) -> dict[str, Any]:
    """The context of ``admin/date_hierarchy.html``, from two index probes at most."""
    field = cl.date_hierarchy
    year_field, month_field, day_field = f"{field}__year", f"{field}__month", f"{field}__day"
    year = cl.params.get(year_field)
    month = cl.params.get(month_field)
    day = cl.params.get(day_field)

    def link(filters: dict[str, Any]) -> str:
        return str(cl.get_query_string(filters, [f"{field}__"]))

    if year and month and day:
        chosen = dt.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    bounds = cl.queryset.aggregate(first=models.Min(field), last=models.Max(field))
    if bounds["first"] is None or bounds["last"] is None:
        return {"show": False}
    first, last = _local(bounds["first"]), _local(bounds["last"])
    if not year and first.year == last.year:
        year = str(first.year)
        if first.month == last.month:
            month = str(first.month)
    if year and month:
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in _days(first, last)
            ],
        }
    if year:
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in _months(first, last)
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(y)}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }
