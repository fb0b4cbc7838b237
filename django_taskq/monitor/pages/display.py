"""How the live pages show what Redis holds: times, durations, message bodies.

Redis may hold anything (a hand-written entry, a clock far off, a number
that is not one), and a page must still render: every helper here takes
what it is given and returns something to show instead of raising. Message
bodies are described by ``monitor.display.describe`` (h2), through
``pages.sources``.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from django.utils.translation import gettext as _

#: Most characters of arguments or raw bytes a cell shows.
PREVIEW = 200

_ENTRY_ID = re.compile(r"^(\d{1,15})-\d+$")


def preview(text: str, limit: int = PREVIEW) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def moment(epoch: float | None) -> dt.datetime | None:
    """An aware datetime for epoch seconds, or None for a missing or absurd value."""
    if epoch is None or not 0 < epoch < 32503680000:  # before year 3000
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).astimezone(timezone.get_current_timezone())


def entry_moment(entry_id: str) -> dt.datetime | None:
    """When a stream entry was added, from its id (``<ms>-<seq>``)."""
    match = _ENTRY_ID.match(entry_id)
    return moment(int(match.group(1)) / 1000) if match else None


def duration(seconds: float | None) -> str:
    """Seconds as a short human duration: "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min"."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return _("%(n)d ms") % {"n": round(seconds * 1000)}
    if seconds < 60:
        return _("%(n).1f s") % {"n": seconds}
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    return _("%(d)d days %(h)d h") % {"d": hours // 24, "h": hours % 24}


def anchor(worker_name: str) -> str:
    """The HTML id of a worker's row on the workers page (other pages link to it)."""
    return "worker-" + "".join(c if c.isalnum() else "-" for c in worker_name)
