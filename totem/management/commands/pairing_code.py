"""Make a one-time pairing code for a kiosk or display: `manage.py pairing_code demo totem`."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from equipment.models import Equipment
from tenants.models import Tenant
from totem.models import PAIRABLE_KINDS, PairingCode


class Command(BaseCommand):
    help = "Print a one-time code that pairs a browser with a tenant's kiosk or display."

    def add_arguments(self, parser) -> None:
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("device", help="the device's identifier (Equipment.identifier)")
        parser.add_argument("--minutes", type=int, default=30, help="how long the code is valid")

    def handle(self, *args, tenant: str, device: str, minutes: int, **options) -> None:
        found = Tenant.objects.alive().filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"no tenant with slug {tenant!r}")
        equipment = Equipment.objects.alive().for_tenant(found).filter(identifier=device).first()
        if equipment is None:
            raise CommandError(f"tenant {tenant!r} has no device {device!r}")
        if equipment.kind not in PAIRABLE_KINDS:
            raise CommandError(f"{device!r} is a {equipment.kind}; only kiosks and displays pair")
        if minutes < 1:
            raise CommandError("--minutes must be at least 1")
        code = PairingCode.objects.create(
            tenant=found,
            equipment=equipment,
            expires_at=timezone.now() + timedelta(minutes=minutes),
        )
        self.stdout.write(code.code)
