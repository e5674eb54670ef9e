"""A tenant's colours, and the palette every public screen draws with.

A studio picks two colours: a primary (the kiosk's header and welcome screen, the TV's header
and stage, the phone page's header) and an accent (buttons, the selected card, the call
number). Whatever they pick, every text on the screens keeps WCAG 2.x contrast:

- text drawn *on* a tenant colour is black or white, whichever contrasts more — one of the two
  always reaches 4.58:1, so these pairs never refuse a colour;
- a tenant colour drawn *as* text on white falls back to the house ink when it is too light;
- the TV's stage needs 7:1 (read at 6 m): a primary that no ink reaches 7:1 on leaves the
  stage its default dark blue, and the number is the accent only where it reaches 7:1;
- the one pair a tenant really chooses is the accent written on the primary (the welcome
  screen's "Toque para começar"): under 4.5:1 the admin refuses the palette, naming it.

Pure functions on "#rrggbb" strings: no database, no request, so the maths is tested alone
(tests/test_branding.py, with a hypothesis property over every accepted palette).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

AA = 4.5  # WCAG 2.x 1.4.3, normal text
AAA = 7.0  # WCAG 2.x 1.4.6; the TV's number, service and room are read from across a room
BLACK = "#000000"
WHITE = "#ffffff"
INK = "#111111"  # the kiosk's own text colour
PAPER = WHITE
DEFAULT_PRIMARY = "#0b3d91"
DEFAULT_ACCENT = "#ffd400"
TV_STAGE = "#17233d"  # the TV's own dark stage (static/totem/live.css)
TINT = 0.12  # how much of the accent colours a selected card's background

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def is_hex_colour(value: str) -> bool:
    return bool(_HEX.match(value or ""))


def _rgb(colour: str) -> tuple[int, int, int]:
    if not is_hex_colour(colour):
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour, 0 (black) to 1 (white)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, two: str) -> float:
    """WCAG 2.x contrast ratio of two colours, 1 to 21, whichever order they come in."""
    high, low = sorted((relative_luminance(one), relative_luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink_on(background: str) -> str:
    """Black or white, whichever contrasts more with `background` (always ≥ 4.58:1)."""
    return BLACK if contrast(BLACK, background) >= contrast(WHITE, background) else WHITE


def text_or(colour: str, background: str, fallback: str, minimum: float = AA) -> str:
    """`colour` as text on `background` when it reaches `minimum`, else `fallback`."""
    return colour if contrast(colour, background) >= minimum else fallback


def tint(colour: str, amount: float) -> str:
    """`colour` laid at `amount` opacity over white."""
    mixed = (round(255 + (c - 255) * amount) for c in _rgb(colour))
    return "#{:02x}{:02x}{:02x}".format(*mixed)


@dataclass(frozen=True)
class Pair:
    """A text colour on a background somewhere on a screen, and the contrast it needs."""

    name: str  # for the admin's refusal, in the manager's language
    text: str
    background: str
    minimum: float = AA

    @property
    def ratio(self) -> float:
        return contrast(self.text, self.background)

    @property
    def passes(self) -> bool:
        return self.ratio >= self.minimum


@dataclass(frozen=True)
class Palette:
    """Every colour the screens use, derived from a tenant's primary and accent."""

    primary: str
    accent: str

    @property
    def primary_ink(self) -> str:
        return ink_on(self.primary)

    @property
    def accent_ink(self) -> str:
        return ink_on(self.accent)

    @property
    def accent_text(self) -> str:
        """The accent as text on white (secondary buttons), or the ink when too light."""
        return text_or(self.accent, PAPER, INK)

    @property
    def selected(self) -> str:
        """A selected card's background: a light tint of the accent."""
        return tint(self.accent, TINT)

    @property
    def tv_stage(self) -> str:
        return self.primary if contrast(ink_on(self.primary), self.primary) >= AAA else TV_STAGE

    @property
    def tv_stage_ink(self) -> str:
        return ink_on(self.tv_stage)

    @property
    def tv_number(self) -> str:
        return text_or(self.accent, self.tv_stage, self.tv_stage_ink, AAA)

    def pairs(self) -> list[Pair]:
        """Every text/background pair the screens draw with these colours."""
        return [
            Pair(_("text on the primary colour"), self.primary_ink, self.primary),
            Pair(_("text on the accent colour"), self.accent_ink, self.accent),
            Pair(_("the accent colour on the primary colour"), self.accent, self.primary),
            Pair(_("the accent colour on white"), self.accent_text, PAPER),
            Pair(_("text on a chosen service"), INK, self.selected),
            Pair(_("text on the TV's stage"), self.tv_stage_ink, self.tv_stage, AAA),
            Pair(_("the number called on the TV"), self.tv_number, self.tv_stage, AAA),
        ]

    def failing(self) -> list[Pair]:
        return [pair for pair in self.pairs() if not pair.passes]

    def css_variables(self) -> dict[str, str]:
        """The custom properties the kiosk, TV and phone page read (see their CSS)."""
        return {
            "--brand": self.primary,
            "--brand-ink": self.primary_ink,
            "--accent": self.accent,
            "--accent-ink": self.accent_ink,
            "--accent-text": self.accent_text,
            "--selected-bg": self.selected,
            "--stage": self.tv_stage,
            "--stage-ink": self.tv_stage_ink,
            "--number": self.tv_number,
            "--room": self.tv_number,
        }
