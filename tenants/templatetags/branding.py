"""A tenant's colours as CSS custom properties, for every public screen's <head>."""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.utils.html import format_html, format_html_join

from tenants.branding import Palette
from tenants.models import Tenant

register = template.Library()


@register.simple_tag
def brand_style(tenant: Tenant | None) -> str:
    """`<style>` setting the palette's variables on :root; nothing without a tenant.

    The colours were validated as #rrggbb on save (tenants.models.validate_colour), and are
    escaped here anyway: nothing a tenant types reaches a style sheet raw.
    """
    if tenant is None:
        return ""
    return _style(tenant.primary_colour, tenant.accent_colour)


@lru_cache(maxsize=1024)
def _style(primary: str, accent: str) -> str:
    """Per pair of colours, computed once per process: the contrast arithmetic behind the
    palette ran on every page of every screen."""
    variables = format_html_join("", "{}:{};", Palette(primary, accent).css_variables().items())
    return format_html("<style>:root{{{}}}</style>", variables)
