"""Plain-language descriptions of cron schedules, for the admin.

``describe(spec)`` turns ``0 3 * * 1-5`` in Europe/Berlin into "At 03:00,
Monday through Friday (Europe/Berlin)". It covers the common shapes (fixed
times, steps, ranges, lists, names, ``L`` and ``#``) and falls back to
naming the raw field for anything rarer, so it never raises.
"""

from __future__ import annotations

from typing import Any

from croniter import croniter
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from django_taskq.beat.cron import CronSpec

#: Day and month names in English; shown through gettext, whose translations
#: of them come with Django's own catalogs (django/utils/dates.py).
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return _("%(first)s and %(last)s") % {"first": ", ".join(items[:-1]), "last": items[-1]}


def _ints(values: list[Any]) -> list[int] | None:
    """Expanded croniter values as ints, or None for '*' or special values (L, #)."""
    if values == ["*"]:
        return None
    if all(isinstance(v, int) for v in values):
        return sorted(set(values))
    return None


def _is_range(values: list[int]) -> bool:
    return len(values) >= 3 and values == list(range(values[0], values[-1] + 1))


def _step(values: list[int], size: int) -> int | None:
    """n when ``values`` is 0, n, 2n, ... covering the whole field (``*/n``)."""
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1] - values[0]
    if values == list(range(0, size, step)):
        return step
    return None


def _names(values: list[int], names: tuple[str, ...], offset: int) -> str:
    if _is_range(values):
        return _("%(start)s through %(end)s") % {
            "start": _(names[values[0] - offset]),
            "end": _(names[values[-1] - offset]),
        }
    return _join([_(names[v - offset]) for v in values])


def _time_part(spec: CronSpec, minutes: list[int] | None, hours: list[int] | None) -> str:
    if hours is not None and minutes is not None and len(hours) * len(minutes) <= 6:
        times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
        return _("At %(times)s") % {"times": _join(times)}
    if minutes is None:
        head = _("Every minute")
    elif hours is None and (step := _step(minutes, 60)) is not None:
        head = _("Every %(n)d minutes") % {"n": step}
    elif len(minutes) == 1:
        head = _("At minute %(n)d past the hour") % {"n": minutes[0]}
    else:
        head = _("At minutes %(list)s past the hour") % {"list": _join([str(m) for m in minutes])}
    if hours is None:
        return head
    if (step := _step(hours, 24)) is not None:
        return _("%(head)s, every %(n)d hours") % {"head": head, "n": step}
    if _is_range(hours):
        return _("%(head)s, between %(start)02d:00 and %(end)02d:59") % {
            "head": head,
            "start": hours[0],
            "end": hours[-1],
        }
    listed = _join([f"{h:02d}:00" for h in hours])
    return _("%(head)s, in the hours starting %(list)s") % {"head": head, "list": listed}


ORDINALS = (
    gettext_noop("first"),
    gettext_noop("second"),
    gettext_noop("third"),
    gettext_noop("fourth"),
    gettext_noop("fifth"),
)


def _ordinals(ns: set[int | str]) -> list[str]:
    """Words for croniter's nth-weekday marks: 1..5 (``5#2``) and ``"l"`` (``L5``, the last)."""
    numbered = sorted(n for n in ns if isinstance(n, int) and 1 <= n <= 5)
    words = [_(ORDINALS[n - 1]) for n in numbered]
    if any(isinstance(n, str) and n.lower() == "l" for n in ns):
        words.append(_("last"))
    return words


def _day_parts(
    spec: CronSpec, fields: list[list[Any]], nth: dict[int, set[int | str]]
) -> list[str]:
    parts: list[str] = []
    days, months, weekdays = fields[2], fields[3], fields[4]
    day_values = _ints(days)
    if day_values is not None:
        if len(day_values) == 1:
            parts.append(_("on day %(n)d of the month") % {"n": day_values[0]})
        elif _is_range(day_values):
            parts.append(
                _("on days %(start)d through %(end)d of the month")
                % {"start": day_values[0], "end": day_values[-1]}
            )
        else:
            listed = _join([str(d) for d in day_values])
            parts.append(_("on days %(list)s of the month") % {"list": listed})
    elif days != ["*"]:
        if [str(d).lower() for d in days] == ["l"]:
            parts.append(_("on the last day of the month"))
        else:
            parts.append(_("on day-of-month %(raw)s") % {"raw": spec.day_of_month})
    weekday_values = _ints(weekdays)
    if nth:
        phrases = [
            _("the %(nth)s %(day)s of the month") % {"nth": ordinal, "day": _(DAYS[day])}
            for day, ns in sorted(nth.items())
            for ordinal in _ordinals(ns)
        ]
        parts.append(_("on %(days)s") % {"days": _join(phrases)})
    elif weekday_values is not None:
        if _is_range(weekday_values):
            parts.append(_names(weekday_values, DAYS, 0))
        elif len(weekday_values) == 1:
            parts.append(_("only on %(day)s") % {"day": _(DAYS[weekday_values[0]])})
        else:
            parts.append(_("on %(days)s") % {"days": _names(weekday_values, DAYS, 0)})
    elif weekdays != ["*"]:
        parts.append(_("on day-of-week %(raw)s") % {"raw": spec.day_of_week})
    month_values = _ints(months)
    if month_values is not None:
        if len(month_values) == 1:
            parts.append(_("only in %(month)s") % {"month": _(MONTHS[month_values[0] - 1])})
        else:
            parts.append(_("in %(months)s") % {"months": _names(month_values, MONTHS, 1)})
    return parts


def describe(spec: CronSpec) -> str:
    """A sentence saying when ``spec`` runs, ending with its time zone."""
    try:
        expanded = croniter.expand(spec.expression)
        fields: list[list[Any]] = expanded[0]
        # croniter marks "the nth weekday" as ints and "the last weekday" (L5) as "l".
        nth: dict[int, set[int | str]] = {int(k): set(v) for k, v in (expanded[1] or {}).items()}
    except Exception:
        return f"{spec.expression} ({spec.timezone})"
    minutes, hours = _ints(fields[0]), _ints(fields[1])
    text = ", ".join([_time_part(spec, minutes, hours), *_day_parts(spec, fields, nth)])
    return f"{text} ({spec.timezone})"
