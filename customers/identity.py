"""Finding a customer again by CPF, and remembering one who gave a CPF with consent."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Customer
from tenants.models import Tenant


def find(tenant: Tenant, cpf: str) -> Customer | None:
    """The tenant's customer with this canonical CPF, if any."""
    if not cpf:
        return None
    return Customer.objects.for_tenant(tenant).filter(cpf=cpf).first()


def remember(
    tenant: Tenant, *, cpf: str, name: str, phone: str = "", consent_version: str
) -> Customer:
    """The customer with this CPF, created on the first visit and brought up to date on the
    next ones (the name to be called by, a phone typed again, the consent just given).

    A phone left blank keeps the stored one: the kiosk never shows it back, so a returning
    customer is not asked for it. Two kiosks seeing a new CPF at once end at one record (the
    unique constraint; the loser reads the winner's row). Call inside the sale's transaction.
    """
    now = timezone.now()
    changes = {
        "name": name,
        "consent_version": consent_version,
        "consent_at": now,
        "last_seen_at": now,
    }
    if phone:
        changes["phone"] = phone
    customer = find(tenant, cpf)
    if customer is None:
        try:
            with transaction.atomic():
                return Customer.objects.create(tenant=tenant, cpf=cpf, **changes)
        except IntegrityError:
            customer = Customer.objects.for_tenant(tenant).get(cpf=cpf)
    Customer.objects.filter(pk=customer.pk).update(**changes)
    for field, value in changes.items():
        setattr(customer, field, value)
    return customer
