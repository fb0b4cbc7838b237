"""Small inline SVG bar charts for the dashboard: no JavaScript library, no build step.

A chart is one ``<svg>`` with a bar per minute, a ``<title>`` per bar (the
browser shows it on hover: the minute and the count), the largest value on
the left and the first and last minute below. The page's script replaces
the whole chart on each refresh, so nothing here needs to be incremental.
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from django_taskq.monitor.pages import display

WIDTH = 600
HEIGHT = 120
LEFT = 40  # room for the y-axis label
BOTTOM = 18  # room for the x-axis labels


def bar_chart(points: list[tuple[int, int]], label: str, css_class: str) -> SafeString:
    """An SVG bar chart of ``points`` = [(minute start, epoch seconds), count), ...]."""
    top = max((n for _, n in points), default=0)
    scale = (HEIGHT - BOTTOM - 4) / top if top else 0.0
    step = (WIDTH - LEFT) / max(len(points), 1)
    bars = []
    for index, (minute, n) in enumerate(points):
        height = n * scale
        at = display.moment(minute)
        when = at.strftime("%H:%M") if at else str(minute)
        bars.append(
            (
                f"{LEFT + index * step + 0.5:.1f}",
                f"{HEIGHT - BOTTOM - height:.1f}",
                f"{max(step - 1, 0.5):.1f}",
                f"{height:.1f}",
                f"{when}: {n}",
            )
        )
    first = display.moment(points[0][0]) if points else None
    last = display.moment(points[-1][0]) if points else None
    return format_html(
        '<svg class="taskq-chart {}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="taskq-axis"/>'
        '<text x="{}" y="12" text-anchor="end">{}</text>'
        '<text x="{}" y="{}" text-anchor="start">{}</text>'
        '<text x="{}" y="{}" text-anchor="end">{}</text>'
        "{}</svg>",
        css_class,
        WIDTH,
        HEIGHT,
        label,
        LEFT,
        HEIGHT - BOTTOM,
        WIDTH,
        HEIGHT - BOTTOM,
        LEFT - 4,
        top,
        LEFT,
        HEIGHT - 4,
        first.strftime("%H:%M") if first else "",
        WIDTH,
        HEIGHT - 4,
        last.strftime("%H:%M") if last else "",
        format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            bars,
        ),
    )
