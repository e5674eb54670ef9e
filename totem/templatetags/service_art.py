"""A service's picture on the kiosk: the one uploaded, or an illustration chosen by its name."""

from __future__ import annotations

import unicodedata

from django import template

from tickets.models import Service

register = template.Library()

ON_FIRST_SCREEN = 4

# Words (accents folded, lower case) that say which illustration a service gets, first match
# wins; the studios' own names in seed 003 ("Crioterapia", "Bota de compressão", "Sauna
# infravermelha", "Massagem"…) and their usual synonyms.
ILLUSTRATIONS = [
    ("cold", ("crio", "cryo", "frio", "gelo", "ice", "banheira")),
    ("boots", ("bota", "compress", "pressoterapia", "drenagem", "perna")),
    ("heat", ("sauna", "infraverm", "calor", "termo", "vapor")),
    ("massage", ("massag", "cadeira", "relax", "liberacao", "pedra")),
]


def illustration_for(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    for kind, words in ILLUSTRATIONS:
        if any(word in folded for word in words):
            return kind
    return "generic"


@register.inclusion_tag("kiosk/_service_picture.html")
def service_picture(service: Service, position: int = 1) -> dict:
    """The uploaded picture with its size, or an inline SVG. `position` is the card's place
    in the grid (from 1): past the first four, which every layout shows at once, the picture
    loads lazily, when scrolled to."""
    return {
        "service": service,
        "lazy": position > ON_FIRST_SCREEN,
        "kind": "" if service.picture else illustration_for(service.name),
    }
