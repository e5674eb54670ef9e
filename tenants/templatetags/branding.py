"""A tenant's colours as CSS custom properties, for every public screen's <head>."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join

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
    variables = format_html_join("", "{}:{};", tenant.palette.css_variables().items())
    return format_html("<style>:root{{{}}}</style>", variables)
