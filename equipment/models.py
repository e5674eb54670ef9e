"""Devices of a tenant: kiosks, displays, printers, panels and the machines services run on."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from tenants.models import SoftDeleteQuerySet, Tenant, TenantQuerySet


class Kind(models.TextChoices):
    KIOSK = "kiosk", _("Kiosk")
    DISPLAY = "display", _("Display")
    PRINTER = "printer", _("Printer")
    PANEL = "panel", _("Operator panel")
    SERVICE_DEVICE = "service_device", _("Service device")


class Status(models.TextChoices):
    ONLINE = "online", _("Online")
    OFFLINE = "offline", _("Offline")
    MAINTENANCE = "maintenance", _("Maintenance")


class EquipmentQuerySet(SoftDeleteQuerySet, TenantQuerySet):
    def service_devices(self) -> EquipmentQuerySet:
        return self.alive().filter(kind=Kind.SERVICE_DEVICE)

    def able_to_run(self, service) -> EquipmentQuerySet:
        """Online service devices that can run `service`: where it may be called onto."""
        return self.service_devices().filter(status=Status.ONLINE, services=service)


class Equipment(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="equipment")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=80)
    identifier = models.SlugField(_("identifier"), max_length=40)
    location = models.CharField(
        _("room/location"), max_length=80, blank=True, help_text=_("Announced on the display.")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ONLINE
    )
    services = models.ManyToManyField(
        "tickets.Service",
        blank=True,
        related_name="equipment",
        verbose_name=_("services it can run"),
    )
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    history = HistoricalRecords(m2m_fields=[services])
    objects = EquipmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("equipment")
        verbose_name_plural = _("equipment")
        ordering = ["tenant", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "identifier"],
                condition=Q(deleted_at__isnull=True),
                name="equipment_identifier_per_tenant",
            ),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="equipment_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="equipment_status_valid"
            ),
        ]
        indexes = [
            # Seed 003 §7: devices are listed by tenant and kind.
            models.Index(fields=["tenant", "kind"], name="equipment_tenant_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.location})" if self.location else self.name

    @property
    def announced_as(self) -> str:
        """What the display says: the room if there is one, else the device's name."""
        return self.location or self.name
