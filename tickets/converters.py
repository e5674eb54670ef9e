"""Path converters for the URLs that carry a ticket's token (its status page, its receipt,
its socket)."""

from __future__ import annotations


class TicketTokenConverter:
    """A ticket's token as `tickets.models.new_token` makes it: 32 URL-safe base64 characters.

    Anything else — a NUL byte, 10 kB, non-ASCII — is no ticket's, so the resolver answers 404
    before a view or a query sees it (PostgreSQL refuses a NUL in a query: a 500 otherwise).
    """

    regex = "[A-Za-z0-9_-]{32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
