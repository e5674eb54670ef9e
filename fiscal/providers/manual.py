"""NFS-e issued outside Totem (the municipality's portal, the accountant's system): Totem
queues what must be issued and a person records the number in admin."""

from __future__ import annotations

from fiscal.providers.base import InvoiceProvider


class ManualProvider(InvoiceProvider):
    name = "manual"
    issues_by_hand = True
