"""Small server-rendered SVG charts for the manager dashboard: no JavaScript, no CDN.

Each function returns safe markup (every label goes through format_html). The SVG scales with
its container through its viewBox; every bar carries a <title>, the browser's tooltip.

Legible labels: WIDTH is about the width a chart gets on the dashboard at 1920 px, so the
viewBox is drawn at 1:1 or larger there and FONT user units are FONT pixels; on a phone,
where the chart shrinks to about 55 %, ops.css raises the text to PHONE_FONT units (about
13 px). Margins are sized for the larger of the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 540, 240
FONT, PHONE_FONT = 16, 24
# An average character of the labels, in user units, at the phone's larger font.
CHAR = 0.6 * PHONE_FONT


def n(value: float) -> str:
    """A coordinate, one decimal: format_html escapes before formatting, so no format specs."""
    return f"{value:.1f}"


LEFT, RIGHT, TOP, BOTTOM = 48, 8, 14, PHONE_FONT + 14


def nice_ceiling(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at or above `value`."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    colour: str = "#0891b2",
    line: Sequence[float | None] | None = None,
    line_label: str = "",
    label_every: int = 1,
) -> SafeString:
    """Vertical bars, one per label; `line` draws a second series (e.g. a 30-day average)."""
    count = max(len(labels), 1)
    numbers = [v or 0 for v in values] + [v or 0 for v in (line or [])]
    top = nice_ceiling(max(numbers, default=0))
    # Room on the left for the longest axis label (money labels are wide).
    left = max(LEFT, round(CHAR * len(fmt(top))) + 10)
    plot_w, plot_h = WIDTH - left - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / count
    bar_w = max(slot * 0.7, 1)

    def y(value: float) -> float:
        return TOP + plot_h - (value / top) * plot_h

    parts = [
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#d1d5db"/>'
            '<text x="{}" y="{}" text-anchor="end" font-size="{}" class="axis">{}</text>',
            left,
            n(y(level)),
            WIDTH - RIGHT,
            n(y(level)),
            left - 4,
            n(y(level) + 5),
            FONT,
            fmt(level),
        )
        for level in (0, top / 2, top)
    ]
    # Labels never wider than their slots: every other one, or every third, when crowded.
    widest = CHAR * max(map(len, labels), default=1) + PHONE_FONT / 2  # and a gap
    label_every = max(label_every, math.ceil(widest / slot))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + index * slot + (slot - bar_w) / 2
        if value:
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{}: {}</title></rect>",
                    n(x),
                    n(y(value)),
                    n(bar_w),
                    n(TOP + plot_h - y(value)),
                    colour,
                    label,
                    fmt(value),
                )
            )
        if index % label_every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" font-size="{}" class="axis">'
                    "{}</text>",
                    n(left + index * slot + slot / 2),
                    HEIGHT - 8,
                    FONT,
                    label,
                )
            )
    if line:
        points = " ".join(
            f"{left + i * slot + slot / 2:.1f},{y(v):.1f}"
            for i, v in enumerate(line)
            if v is not None
        )
        parts.append(
            format_html(
                '<polyline points="{}" fill="none" stroke="#ea580c" stroke-width="2">'
                "<title>{}</title></polyline>",
                points,
                line_label,
            )
        )
    return _svg(title, parts)


def hbar_chart(
    rows: Sequence[tuple[str, float | None, float | None]],
    *,
    title: str,
    fmt: Callable[[float], str],
    first_label: str,
    second_label: str,
) -> SafeString:
    """Horizontal pairs of bars: per row a first value (e.g. today) and a second (30 days).

    The row's name sits above its bars, so a long service name never runs off the left edge.
    """
    row_h = 3 * PHONE_FONT + 16
    height = TOP + row_h * max(len(rows), 1)
    # Room on the right for the longest value printed after its bar.
    plot_w = WIDTH - round(CHAR * 8) - 8
    top = nice_ceiling(max((v or 0 for _, a, b in rows for v in (a, b)), default=0))
    parts = []
    for index, (label, first, second) in enumerate(rows):
        y0 = TOP + index * row_h
        parts.append(
            format_html(
                '<text x="0" y="{}" font-size="{}" class="label">{}</text>',
                y0 + FONT,
                FONT,
                label,
            )
        )
        for offset, value, colour, name in (
            (PHONE_FONT + 4, first, "#0891b2", first_label),
            (2 * PHONE_FONT + 8, second, "#f59e0b", second_label),
        ):
            if value is None:
                continue
            length = value / top * plot_w
            parts.append(
                format_html(
                    '<rect x="0" y="{}" width="{}" height="13" fill="{}">'
                    "<title>{} {}: {}</title></rect>"
                    '<text x="{}" y="{}" font-size="{}" class="axis">{}</text>',
                    y0 + offset,
                    n(max(length, 1)),
                    colour,
                    label,
                    name,
                    fmt(value),
                    n(max(length, 1) + 4),
                    y0 + offset + 12,
                    FONT,
                    fmt(value),
                )
            )
    return _svg(title, parts, height=height)


def _svg(title: str, parts: list[str], height: int = HEIGHT) -> SafeString:
    body = format_html_join("", "{}", ((p,) for p in parts))
    return format_html(
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}" class="chart"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        WIDTH,
        height,
        title,
        title,
        mark_safe(body),  # noqa: S308 — each part was built by format_html above
    )
