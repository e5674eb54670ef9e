"""Demo data for a newcomer: `manage.py seed_demo`. Safe to run again: it updates, never doubles."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont

from equipment.destinations import file_path
from equipment.models import Connection, Equipment, Kind, PrinterSettings
from messaging.models import RemoteJoin
from tenants.models import Membership, Role, Tenant
from tickets.models import Extra, Package, PackageKind, PackageService, Service

SERVICES = [
    # name, prefix, price, session minutes, hard maximum, cool-down/cleaning minutes, description
    # A whole-body cryo session lasts at most 3 min and the chamber needs time to get back to
    # temperature; a sauna and a massage table are cleaned between customers.
    ("Crioterapia", "C", "120.00", 3, True, 5, "Câmara de crioterapia de corpo inteiro."),
    ("Bota de compressão", "B", "80.00", 30, False, 0, "Botas de compressão pneumática."),
    ("Massagem", "M", "150.00", 45, False, 5, "Massagem relaxante ou desportiva."),
    ("Sauna infravermelha", "S", "90.00", 25, False, 10, "Sauna de infravermelho longo."),
]
# A spa's deep green and a warm yellow: the yellow reads 7.7:1 on the green, so the TV's
# number is drawn in it too (tenants/branding.py).
PRIMARY, ACCENT = "#1b4332", "#ffd166"
EXTRAS = [("Toalha", "5.00", 50), ("Água de coco", "8.00", 24)]
PACKAGES = [
    # name, kind, price, days, sessions per service (by prefix)
    ("Crioterapia — 10 sessões", PackageKind.PACKAGE, "990.00", 90, {"C": 10}),
    ("Plano mensal recuperação", PackageKind.MEMBERSHIP, "590.00", 30, {"C": 4, "B": 4}),
]
DEVICES = [
    # name, room, services it runs (by prefix)
    ("Criocâmara 1", "Sala 1", "C"),
    ("Criocâmara 2", "Sala 2", "C"),
    ("Botas A", "Sala 3", "B"),
    ("Botas B", "Sala 3", "B"),
    ("Maca 1", "Sala 4", "M"),
    ("Sauna 1", "Sala 5", "S"),
]
USERS = [
    # username, password, role, staff
    ("admin", "demo-admin", Role.ADMIN, True),
    ("manager", "demo-manager", Role.MANAGER, True),
    ("operator", "demo-operator", Role.OPERATOR, False),
]


class Command(BaseCommand):
    help = "Create or refresh the demo tenant, its catalog, devices and users."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        tenant, created = Tenant.objects.update_or_create(
            slug="demo",
            defaults={
                "name": "Studio Demo",
                "deleted_at": None,
                "is_active": True,
                "primary_colour": PRIMARY,
                "accent_colour": ACCENT,
            },
        )
        if not tenant.logo:  # drawn once: a logo a studio uploaded in admin stays
            tenant.logo.save("studio-demo.png", ContentFile(demo_logo(tenant.name)), save=False)
            tenant.save()
        by_prefix = {}
        for order, (name, prefix, price, minutes, hard, cooldown, description) in enumerate(
            SERVICES
        ):
            service, _ = Service.objects.update_or_create(
                tenant=tenant,
                name=name,
                defaults={
                    "prefix": prefix,
                    "price": Decimal(price),
                    "duration_minutes": minutes,
                    "hard_maximum": hard,
                    "cooldown_minutes": cooldown,
                    "description": description,
                    "display_order": order,
                    "is_active": True,
                    "deleted_at": None,
                },
            )
            by_prefix[prefix] = service
        for name, price, stock in EXTRAS:
            # Stock is only set on creation: a rerun must not refill what was sold.
            Extra.objects.get_or_create(
                tenant=tenant, name=name, defaults={"price": Decimal(price), "stock": stock}
            )
        for name, kind, price, days, sessions in PACKAGES:
            package, _ = Package.objects.update_or_create(
                tenant=tenant,
                name=name,
                defaults={"kind": kind, "price": Decimal(price), "validity_days": days},
            )
            for prefix, count in sessions.items():
                PackageService.objects.update_or_create(
                    package=package, service=by_prefix[prefix], defaults={"sessions": count}
                )
        for name, room, prefixes in DEVICES:
            device, _ = Equipment.objects.update_or_create(
                tenant=tenant,
                identifier=name.lower().replace(" ", "-").replace("â", "a"),
                deleted_at=None,
                defaults={
                    "name": name,
                    "location": room,
                    "kind": Kind.SERVICE_DEVICE,
                    # The TV counts the cryo rooms' sessions down: those waiting watch them.
                    "shows_timer_on_display": "C" in prefixes,
                },
            )
            device.services.set([by_prefix[p] for p in prefixes])
        for kind, name in [(Kind.KIOSK, "Totem da entrada"), (Kind.DISPLAY, "TV da recepção")]:
            Equipment.objects.get_or_create(
                tenant=tenant,
                identifier=kind,
                deleted_at=None,
                defaults={"name": name, "kind": kind},
            )
        # A file printer, so `make run` prints tickets without hardware: run_printer_spooler
        # appends their ESC/POS bytes to var/printers/demo/printer-demo.bin (inside the
        # studio's printer folder, where a tenant's file printer may write). Settings are
        # created once, so a rerun keeps a real printer configured in admin.
        printer, _ = Equipment.objects.get_or_create(
            tenant=tenant,
            identifier="impressora",
            deleted_at=None,
            defaults={"name": "Impressora do totem", "kind": Kind.PRINTER},
        )
        printer_settings, _ = PrinterSettings.objects.get_or_create(
            equipment=printer,
            defaults={
                "connection": Connection.FILE,
                "device": "printer-demo.bin",
                "prints_receipts": True,
                "footer_text": "Obrigado pela visita!",
            },
        )
        # Customers may join from their phone (/t/demo/entrar/), paying by PIX or at the
        # desk. Created once: a rerun keeps what a manager changed in admin.
        RemoteJoin.objects.get_or_create(
            tenant=tenant, defaults={"enabled": True, "pay_at_counter": True}
        )
        User = get_user_model()
        for username, password, role, staff in USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = staff
            user.is_superuser = username == "admin"
            user.save()
            Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        verb = "created" if created else "refreshed"
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo tenant '{tenant.slug}' {verb}: {len(SERVICES)} services, "
                f"{len(EXTRAS)} extras, {len(DEVICES)} service devices, "
                f"users {', '.join(u[0] for u in USERS)}."
            )
        )
        if printer_settings.connection == Connection.FILE:
            self.stdout.write(
                f"Demo printer: tickets are appended to {file_path(printer_settings)} by "
                f"run_printer_spooler."
            )


def demo_logo(name: str, colour: str = PRIMARY, background: str = ACCENT) -> bytes:
    """A PNG logo drawn here, so the demo looks branded without a picture in the repository:
    a leaf and the studio's name in `colour` on a rounded `background` badge (opaque, so it
    reads on the kiosk's header and prints dark on a ticket)."""
    width, height = 720, 200
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=48, fill=background)
    # The leaf: two quadratic curves from stem to tip, and its vein.
    stem, tip = (50, 170), (190, 30)

    def curve(control: tuple[int, int]) -> list[tuple[float, float]]:
        return [
            (
                (1 - t) ** 2 * stem[0] + 2 * (1 - t) * t * control[0] + t**2 * tip[0],
                (1 - t) ** 2 * stem[1] + 2 * (1 - t) * t * control[1] + t**2 * tip[1],
            )
            for t in (i / 24 for i in range(25))
        ]

    draw.polygon(curve((40, 30)) + curve((190, 170))[::-1], fill=colour)
    draw.line((stem, (150, 70)), fill=background, width=7)
    font = ImageFont.load_default(size=76)
    draw.text((224, height // 2), name, font=font, fill=colour, anchor="lm")
    out = BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
