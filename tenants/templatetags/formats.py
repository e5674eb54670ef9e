"""Kiosk template helpers: BRL amounts and QR codes as inline SVG."""

from __future__ import annotations

import functools
import math
from decimal import Decimal

import segno
from django import template
from django.utils.safestring import mark_safe

from tenants.money import brl as format_brl

register = template.Library()

QR_MASK = 0


@register.filter
def brl(value: Decimal | str | int | None) -> str:
    """R$ 1.234,56 whatever the active locale."""
    return "" if value is None or value == "" else format_brl(value)


@register.simple_tag
@functools.lru_cache(maxsize=512)
def qr_svg(data: str, label: str = "", scale: int = 6) -> str:
    """`data` as an inline SVG QR code (dark on white, with its quiet zone), titled `label`.

    Cached: a ticket's or a payment's code is drawn on every refresh of its screen, and
    drawing one took about a twentieth of a kiosk sale's CPU (bench).

    One fixed mask: choosing the best of the eight (scoring each whole drawing) was four
    fifths of a code's cost, ~4 ms of every cash and PIX screen, whose codes are new each
    sale. Any mask makes a valid code; the best one only evens out the dark and light
    patches, which phone cameras at arm's length do not need.
    """
    qr = segno.make(data, error="m", mask=QR_MASK)
    # omitsize: a viewBox instead of a fixed size, so CSS sizes the code. segno escapes the
    # title itself; the rest is its own markup.
    svg = qr.svg_inline(scale=scale, dark="#000", light="#fff", title=label or None, omitsize=True)
    return mark_safe(svg)


@register.filter
def countdown(end, now) -> str:
    """`m:ss` from `now` to `end` (0:00 once past): a timer's text before JavaScript runs
    (static/js/timer.js then counts it down with the same format)."""
    if end is None or now is None:
        return ""
    seconds = max(0, int((end - now).total_seconds()))
    return f"{seconds // 60}:{seconds % 60:02d}"


@register.simple_tag
def minutes_left(end, now) -> int:
    """Whole minutes from `now` to `end`, rounded up (0 once past): "ends in 12 min"."""
    return max(0, math.ceil((end - now).total_seconds() / 60))
