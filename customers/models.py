"""A studio's customers: the person behind the tickets, found again by CPF.

A customer exists only with a CPF given with consent (LGPD): a walk-in without CPF stays the
name typed on one ticket. Packages and credits name services and are spent by service lines,
so they live with the catalog in `tickets`, which sits above this app.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tenants.br import mask_cpf, mask_phone
from tenants.models import Tenant, TenantQuerySet


def first_name(name: str) -> str:
    """What the screens call a customer by: the first word of the name ("" without one)."""
    return name.split(" ")[0]


class Customer(models.Model):
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, related_name="customers", verbose_name=_("company/branch")
    )
    # Canonical: 11 ASCII digits (tenants.br.normalize_cpf), so every typing finds the record.
    cpf = models.CharField(_("CPF"), max_length=11)
    name = models.CharField(_("name"), max_length=80, help_text=_("The name to be called by."))
    phone = models.CharField(_("phone"), max_length=11, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    consent_version = models.CharField(_("consent version"), max_length=20)
    consent_at = models.DateTimeField(_("consent given at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The last visit: retention deletes a customer unseen for the retention period.
    last_seen_at = models.DateTimeField(_("last visit"))

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        constraints = [
            # One record per person and studio: the kiosk's find-or-create relies on it when
            # two kiosks see the same new CPF at once.
            models.UniqueConstraint(fields=["tenant", "cpf"], name="customer_cpf_per_tenant"),
            # A customer exists only with a CPF: without one there is nothing to find again.
            models.CheckConstraint(condition=~Q(cpf=""), name="customer_has_cpf"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cpf_masked})"

    @property
    def first_name(self) -> str:
        return first_name(self.name)

    @property
    def cpf_masked(self) -> str:
        return mask_cpf(self.cpf)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)
