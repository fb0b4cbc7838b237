"""HTML pieces of the history admin: state badges, progress bars, preformatted blocks.

Pure functions of a row's values (no queries), shared by the TaskRecord and
PeriodicTask admins, so a badge looks the same wherever a state is shown.
The colours live in ``static/django_taskq/history.css``; the class names
here are its contract.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from django_taskq import states

#: State -> the badge's colour class (custom states, e.g. PROGRESS, are "running").
_BADGE_CLASS = {
    states.PENDING: "pending",
    states.RECEIVED: "received",
    states.STARTED: "running",
    states.RETRY: "retry",
    states.SUCCESS: "success",
    states.FAILURE: "failure",
    states.REVOKED: "revoked",
}


def state_badge(state: str, dead_lettered: bool = False) -> SafeString:
    """The state as a coloured badge; a dead-lettered task reads DEAD-LETTERED."""
    if dead_lettered:
        return format_html(
            '<span class="taskq-badge taskq-badge-dead" title="{}">{}</span>',
            state,
            _("DEAD-LETTERED"),
        )
    kind = _BADGE_CLASS.get(state, "running")
    return format_html('<span class="taskq-badge taskq-badge-{}">{}</span>', kind, state)


def preformatted(text: str, css: str = "") -> SafeString:
    """``text`` in a scrollable <pre> block, or a dash when empty."""
    if not text:
        return format_html("{}", "-")
    return format_html('<pre class="taskq-pre {}">{}</pre>', css, text)


def pretty_json(raw: str) -> str:
    """``raw`` JSON indented for reading; the text unchanged if it is not JSON."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True)
    except (ValueError, RecursionError):
        return raw


def kept_body(kept: str) -> SafeString:
    """A kept message (``TaskRecord.body``) for reading: decoded, indented, with its content.

    A msgpack or compressed body is shown decoded like a JSON one, under a
    line naming its serializer and compression; one that cannot be read
    here says why, with the text as kept.
    """
    from django_taskq import bodies
    from django_taskq.exceptions import DecodeError
    from django_taskq.messages import dumps

    try:
        raw = bodies.from_text(kept)
    except DecodeError as exc:
        return format_html("{}{}", str(exc), preformatted(kept))
    found = bodies.read(raw)
    if found.content == bodies.JSON:
        return preformatted(pretty_json(kept))
    head = _("Sent as %(content)s; shown decoded.") % {"content": found.content}
    if found.data is None:
        head = _("Sent as %(content)s; cannot be shown here: %(problem)s") % {
            "content": found.content,
            "problem": found.problem,
        }
        return format_html('<p class="taskq-content">{}</p>{}', head, preformatted(kept))
    return format_html(
        '<p class="taskq-content">{}</p>{}', head, preformatted(pretty_json(dumps(found.data)))
    )


def short_id(task_id: str, length: int = 8) -> SafeString:
    """The start of a task id, the whole of it on hover (list columns stay narrow)."""
    if len(task_id) <= length + 1:
        return format_html('<code class="taskq-id">{}</code>', task_id)
    return format_html('<code class="taskq-id" title="{}">{}…</code>', task_id, task_id[:length])


def timestamp(value: dt.datetime | None, precise: bool = False) -> str:
    """A time in the current zone, to the second (to the millisecond with ``precise``)."""
    if value is None:
        return "-"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if precise:
        text += f".{local.microsecond // 1000:03d} {local.strftime('%Z')}".rstrip()
    return text


def seconds(value: float | None) -> str:
    """A duration for a column: ``0.042 s``, ``12.3 s``, ``4 min 05 s``; a dash when unknown."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.3f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class Progress:
    """How far a running task says it is: a fraction, and what it said."""

    fraction: float  # 0.0 .. 1.0
    label: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_progress(meta: Any) -> Progress | None:
    """Read ``{"current": n, "total": m}`` (or done/completed) or ``{"percent": p}``.

    None when ``meta`` says neither, so the caller shows the raw meta instead.
    """
    if not isinstance(meta, dict):
        return None
    total = _number(meta.get("total"))
    for key in ("current", "done", "completed"):
        current = _number(meta.get(key))
        if current is not None and total:
            fraction = min(max(current / total, 0.0), 1.0)
            return Progress(fraction, f"{current:g} / {total:g} ({fraction:.0%})")
    percent = _number(meta.get("percent", meta.get("percentage")))
    if percent is not None:
        fraction = min(max(percent / 100, 0.0), 1.0)
        return Progress(fraction, f"{fraction:.0%}")
    return None


def progress_block(meta: Any, state: str) -> SafeString:
    """A progress bar while the task runs, else (or for other meta) the raw meta."""
    if meta is None or meta == {}:
        return format_html("{}", "-")
    parsed = parse_progress(meta)
    if parsed is not None and state not in states.READY_STATES:
        return format_html(
            '<div class="taskq-progress"><progress max="1000" value="{}">{}</progress> '
            '<span class="taskq-progress-label">{}</span></div>',
            int(parsed.fraction * 1000),
            parsed.label,
            parsed.label,
        )
    raw = json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return preformatted(raw, "taskq-progress-meta")
