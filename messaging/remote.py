"""Joining the queue from the phone: the QR poster at the door opens a page that sells a ticket
like the kiosk does, marked remote, behind the tenant's switch and its limits.

What may be sold is still `create_ticket`'s decision (opening hours, services on sale and
runnable). Here: the tenant's switch and pause, at most `per_ip_per_hour` tickets from one
address (the cache's throttle: a flood stops before any query) and `per_phone_per_day` for
one number, and at most `max_waiting` remote tickets not yet over. The last two are counted
in the database under a lock on the tenant's settings row, so parallel joins cannot all pass
the same last free place.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging import optin
from messaging.models import RemoteJoin, RemoteTicket
from tenants import throttle
from tenants.errors import DomainError
from tenants.models import Tenant
from tickets.issuing import create_ticket
from tickets.models import Channel, Ticket, TicketStatus

IP_WINDOW = 3600


def settings_of(tenant: Tenant) -> RemoteJoin | None:
    """The tenant's settings when joining from the phone is on (paused or not), else None."""
    return RemoteJoin.objects.filter(tenant=tenant, enabled=True).first()


def check_open(settings: RemoteJoin | None) -> RemoteJoin:
    if settings is None:
        raise DomainError(_("This studio does not take tickets from the phone."))
    if settings.paused:
        raise DomainError(_("Joining from the phone is paused right now. Please try later."))
    return settings


def join(
    tenant: Tenant,
    *,
    service_ids: list[int],
    customer_name: str,
    phone: str,
    ip: str,
    whatsapp: bool = False,
    consent_version: str,
    idempotency_key: str,
) -> Ticket:
    """Sell a ticket from the phone (pending payment), marked remote.

    Raises DomainError for the tenant's rules, ValidationError (by field) for what
    `create_ticket` refuses. A repeated `idempotency_key` returns the first ticket.
    """
    settings = check_open(settings_of(tenant))
    if idempotency_key:
        existing = Ticket.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if not throttle.allow(
        "remote-join", str(tenant.pk), ip, limit=settings.per_ip_per_hour, window=IP_WINDOW
    ):
        raise DomainError(_("Too many tickets from this connection. Please try later."))
    with transaction.atomic():
        # One join at a time per tenant: the counts below and the insert see the same world.
        settings = check_open(RemoteJoin.objects.select_for_update().get(pk=settings.pk))
        since = timezone.now() - timedelta(days=1)
        mine = RemoteTicket.objects.filter(
            tenant=tenant, created_at__gte=since, ticket__customer_phone=phone
        )
        if phone and mine.count() >= settings.per_phone_per_day:
            raise DomainError(_("This phone number already has its tickets for today."))
        if settings.max_waiting:
            open_remote = RemoteTicket.objects.filter(tenant=tenant, created_at__gte=since).exclude(
                ticket__status__in=[TicketStatus.COMPLETED, TicketStatus.CANCELLED]
            )
            if open_remote.count() >= settings.max_waiting:
                raise DomainError(
                    _("The queue from the phone is full right now. Please come to the studio.")
                )
        ticket = create_ticket(
            tenant,
            service_ids=service_ids,
            customer_name=customer_name,
            phone=phone,
            consent_version=consent_version,
            idempotency_key=idempotency_key,
            channel=Channel.PHONE,
        )
        RemoteTicket.objects.get_or_create(ticket=ticket, defaults={"tenant": tenant})
    if whatsapp:
        optin.opt_in(ticket, consent_version=optin.CONSENT_VERSION)
    return ticket


def is_remote(ticket: Ticket) -> bool:
    return RemoteTicket.objects.filter(ticket=ticket).exists()
