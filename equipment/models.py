"""Devices of a tenant: kiosks, displays, printers, panels and the machines services run on."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.compiled import CompiledRead
from tenants.history import HistoricalRecords
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


class DeviceState(models.TextChoices):
    """What a service device is doing now, derived from its status, its active line and its
    timestamps (never stored: no timer has to flip it for it to be right)."""

    FREE = "free", _("Free")
    IN_USE = "in_use", _("In use")
    COOLING = "cooling", _("Cooling down")
    MAINTENANCE = "maintenance", _("Maintenance")
    OFFLINE = "offline", _("Offline")


# States in which nothing may be called onto a device (besides being in use).
NOT_CALLABLE = (DeviceState.COOLING, DeviceState.MAINTENANCE, DeviceState.OFFLINE)


class EquipmentQuerySet(SoftDeleteQuerySet, TenantQuerySet):
    def service_devices(self) -> EquipmentQuerySet:
        return self.alive().filter(kind=Kind.SERVICE_DEVICE)

    def able_to_run(self, service) -> EquipmentQuerySet:
        """Online service devices that can run `service`: where it may be called onto."""
        return self.service_devices().filter(status=Status.ONLINE, services=service)


def announced_as(location: str, name: str) -> str:
    """What the display says of a device: the room if there is one, else the device's name
    (also for a device read as plain values, as the TV's calls are)."""
    return location or name


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
    # Set when a session ends (tickets.devices.release): nothing is called onto the device
    # before it, a rule the database holds too (trigger `line_device_ready`). A time, not a
    # state, so the device is free again when it passes without any process running.
    cooling_until = models.DateTimeField(_("cooling down until"), null=True, blank=True)
    maintenance_starts = models.TimeField(
        _("daily maintenance from"),
        null=True,
        blank=True,
        help_text=_("Local time. Nothing is called onto the device during the window."),
    )
    maintenance_minutes = models.PositiveSmallIntegerField(
        _("daily maintenance (min)"), default=0, help_text=_("0: no daily maintenance window.")
    )
    shows_timer_on_display = models.BooleanField(
        _("session timer on the TV"),
        default=False,
        help_text=_("The public display shows how long this room's session has left."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    # cooling_until changes with every session, by an UPDATE: not a configuration change.
    history = HistoricalRecords(m2m_fields=[services], excluded_fields=["cooling_until"])
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
            models.CheckConstraint(
                condition=Q(maintenance_minutes__lt=24 * 60), name="equipment_maintenance_in_a_day"
            ),
        ]
        indexes = [
            # The worker announces devices whose cool-down has passed (tickets.devices).
            models.Index(
                fields=["cooling_until"],
                condition=Q(cooling_until__isnull=False),
                name="equipment_cooling",
            ),
            # Seed 003 §7: devices are listed by tenant and kind.
            models.Index(fields=["tenant", "kind"], name="equipment_tenant_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.location})" if self.location else self.name

    @property
    def announced_as(self) -> str:
        return announced_as(self.location, self.name)

    def maintenance_until(self, now: datetime) -> datetime | None:
        """The end of the daily maintenance window `now` falls in (the tenant's local time),
        or None outside it. A window may cross midnight. The database's trigger
        `line_device_ready` computes the same on PostgreSQL."""
        if self.maintenance_starts is None or not self.maintenance_minutes:
            return None
        local = timezone.localtime(now, self.tenant.tzinfo)
        start = self.maintenance_starts
        since = (
            local.hour * 3600
            + local.minute * 60
            + local.second
            - (start.hour * 3600 + start.minute * 60 + start.second)
        ) % (24 * 3600)
        if since >= self.maintenance_minutes * 60:
            return None
        return now - timedelta(seconds=since) + timedelta(minutes=self.maintenance_minutes)

    def state(self, now: datetime, *, busy: bool) -> DeviceState:
        """Its state at `now`; `busy` says whether a line is called or in service on it.

        A session already running when the maintenance window opens finishes first: the
        device shows in use, then maintenance.
        """
        if self.status == Status.OFFLINE:
            return DeviceState.OFFLINE
        if self.status == Status.MAINTENANCE:
            return DeviceState.MAINTENANCE
        if busy:
            return DeviceState.IN_USE
        if self.maintenance_until(now) is not None:
            return DeviceState.MAINTENANCE
        if self.cooling_until is not None and self.cooling_until > now:
            return DeviceState.COOLING
        return DeviceState.FREE


class DeviceServiceSettings(models.Model):
    """How one device runs one service, where it differs from the service's defaults (a
    newer chamber that needs less cool-down, a sauna cleaned longer)."""

    equipment = models.ForeignKey(
        Equipment,
        on_delete=models.CASCADE,
        related_name="service_settings",
        verbose_name=_("equipment"),
    )
    service = models.ForeignKey(
        "tickets.Service", on_delete=models.CASCADE, related_name="+", verbose_name=_("service")
    )
    session_minutes = models.PositiveSmallIntegerField(
        _("session length (min)"),
        null=True,
        blank=True,
        help_text=_("Empty: the service's expected duration."),
    )
    cooldown_minutes = models.PositiveSmallIntegerField(
        _("cool-down / cleaning (min)"),
        null=True,
        blank=True,
        help_text=_("Empty: the service's cool-down."),
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("session settings")
        verbose_name_plural = _("session settings per service")
        constraints = [
            models.UniqueConstraint(
                fields=["equipment", "service"], name="device_service_settings_once"
            ),
            models.CheckConstraint(
                condition=Q(session_minutes__isnull=True) | Q(session_minutes__gte=1),
                name="device_service_session_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.equipment} · {self.service}"

    def clean(self) -> None:
        # A manager of two studios could otherwise pair one's device with the other's service.
        if (
            self.equipment_id
            and self.service_id
            and self.service.tenant_id != self.equipment.tenant_id
        ):
            raise ValidationError({"service": _("Choose a service of this device's studio.")})


# --- printing -------------------------------------------------------------------------------


class Connection(models.TextChoices):
    NETWORK = "network", _("Network (TCP, port 9100)")
    USB = "usb", _("USB")
    SERIAL = "serial", _("Serial")
    CUPS = "cups", _("CUPS queue")
    FILE = "file", _("File or device file")


class PaperWidth(models.IntegerChoices):
    MM58 = 58, _("58 mm (32 columns)")
    MM80 = 80, _("80 mm (48 columns)")


# A printer counts as online only if a spooler has seen it this recently (its heartbeat runs
# every 30 s): with no spooler running, paid tickets go to the queue as digital tickets
# instead of waiting in `printing` for a print that nobody will make.
PRINTER_FRESHNESS = timedelta(minutes=2)


class PrinterSettingsQuerySet(models.QuerySet):
    def alive(self) -> PrinterSettingsQuerySet:
        return self.filter(equipment__kind=Kind.PRINTER, equipment__deleted_at__isnull=True)

    def in_service(self, tenant_id: int, seen_since: datetime) -> PrinterSettingsQuerySet:
        """The tenant's printers that are online and were seen by a spooler since then."""
        return (
            self.alive()
            .filter(
                equipment__tenant_id=tenant_id,
                equipment__status=Status.ONLINE,
                equipment__last_seen_at__gte=seen_since,
            )
            .select_related("equipment")
            .order_by("equipment__name", "pk")
        )

    def ticket_printer(self, tenant: Tenant) -> PrinterSettings | None:
        """The printer in service that prints `tenant`'s tickets, or None (digital tickets).

        With several, the first by name: one kiosk, one printer is the usual studio.
        """
        return next((p for p in self._printing(tenant) if p.prints_tickets), None)

    def receipt_printer(self, tenant: Tenant) -> PrinterSettings | None:
        return next((p for p in self._printing(tenant) if p.prints_receipts), None)

    def _printing(self, tenant: Tenant) -> list[PrinterSettings]:
        """`tenant`'s printers in service for tickets or receipts, by name: one query, read
        once per request on a request's tenant (`Tenant.once`) — a payment confirmed asks for
        the ticket's printer, then the receipt's. Never kept beyond the request: whether a
        printer is online must be fresh."""
        return tenant.once(
            "printers_in_service",
            lambda: _IN_SERVICE(tenant.pk, timezone.now() - PRINTER_FRESHNESS),
        )


# Every paid ticket asks (its printer, then its receipt's): the statement is built once.
_IN_SERVICE = CompiledRead(
    lambda tenant_id, seen_since: PrinterSettings.objects.in_service(tenant_id, seen_since).filter(
        Q(prints_tickets=True) | Q(prints_receipts=True)
    )
)


class PrinterSettings(models.Model):
    """How to reach a printer (an Equipment of kind printer) and what its paper looks like."""

    equipment = models.OneToOneField(
        Equipment,
        on_delete=models.CASCADE,
        related_name="printer_settings",
        limit_choices_to={"kind": Kind.PRINTER, "deleted_at__isnull": True},
        verbose_name=_("printer"),
    )
    connection = models.CharField(
        _("connection"), max_length=10, choices=Connection.choices, default=Connection.NETWORK
    )
    host = models.CharField(
        _("host"), max_length=255, blank=True, help_text=_("IP address or name (network).")
    )
    port = models.PositiveIntegerField(_("port"), default=9100)
    device = models.CharField(
        _("path, device or queue"),
        max_length=255,
        blank=True,
        help_text=_(
            "File: a file name in the studio's printer folder, such as tickets.bin (appended "
            "to), or a device such as /dev/usb/lp0. Serial: /dev/ttyUSB0. USB: vendor:product "
            "in hex, e.g. 04b8:0e15. CUPS: the queue name."
        ),
    )
    baudrate = models.PositiveIntegerField(_("baud rate (serial)"), default=9600)
    # Whether a platform superuser set the connection: the platform's allow-lists for printer
    # destinations (equipment/destinations.py) then do not apply, when saved nor when
    # printing. The admin form sets it from who saves; a change of the connection by anyone
    # else clears it. Not a form field: the form, not the user, decides it.
    set_by_platform = models.BooleanField(
        _("connection set by the platform"), default=False, editable=False
    )
    paper_width = models.PositiveSmallIntegerField(
        _("paper width"), choices=PaperWidth.choices, default=PaperWidth.MM80
    )
    prints_tickets = models.BooleanField(
        _("prints tickets"),
        default=True,
        help_text=_("Paid tickets are printed here. Without such a printer they are digital only."),
    )
    prints_receipts = models.BooleanField(_("prints receipts"), default=False)
    print_logo = models.BooleanField(
        _("print the logo"), default=False, help_text=_("The company's logo instead of its name.")
    )
    header_text = models.TextField(_("header text"), blank=True)
    footer_text = models.TextField(
        _("footer text"), blank=True, help_text=_("Printed at the bottom of tickets and receipts.")
    )

    history = HistoricalRecords()
    objects = PrinterSettingsQuerySet.as_manager()

    class Meta:
        verbose_name = _("printer settings")
        verbose_name_plural = _("printers")
        constraints = [
            models.CheckConstraint(
                condition=Q(connection__in=Connection.values), name="printer_connection_valid"
            ),
            models.CheckConstraint(
                condition=Q(paper_width__in=PaperWidth.values), name="printer_paper_width_valid"
            ),
        ]

    def __str__(self) -> str:
        return str(self.equipment)

    @property
    def columns(self) -> int:
        return 32 if self.paper_width == PaperWidth.MM58 else 48

    @property
    def address(self) -> str:
        """Where the bytes go, for screens and logs."""
        if self.connection == Connection.NETWORK:
            return f"{self.host}:{self.port}"
        return self.device

    def clean(self) -> None:
        required = {
            Connection.NETWORK: ("host", _("Say the printer's IP address or host name.")),
            Connection.FILE: ("device", _("Say the file or device path.")),
            Connection.SERIAL: ("device", _("Say the serial device, e.g. /dev/ttyUSB0.")),
            Connection.CUPS: ("device", _("Say the CUPS queue name.")),
            Connection.USB: ("device", _("Say vendor:product in hex, e.g. 04b8:0e15.")),
        }
        field, message = required[self.connection]
        if not getattr(self, field).strip():
            raise ValidationError({field: message})
        if self.connection == Connection.USB:
            try:
                parse_usb_id(self.device)
            except ValueError:
                raise ValidationError({"device": message}) from None
        if self.equipment_id and self.equipment.kind != Kind.PRINTER:
            raise ValidationError({"equipment": _("Choose a device of kind printer.")})


def parse_usb_id(value: str) -> tuple[int, int]:
    """`"04b8:0e15"` → (0x04B8, 0x0E15); ValueError when it is not two hex numbers."""
    vendor, product = value.strip().split(":")
    return int(vendor, 16), int(product, 16)


class JobKind(models.TextChoices):
    TICKET = "ticket", _("Ticket")
    RECEIPT = "receipt", _("Receipt")
    TEST_PAGE = "test_page", _("Test page")


class JobStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PRINTING = "printing", _("Printing")
    PRINTED = "printed", _("Printed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class PrintJob(models.Model):
    """One thing to print. The spooler claims it, prints it outside any transaction, settles it.

    A claim is a lease: `claimed_at` + the spooler's lease time. A spooler killed mid-job
    leaves the job `printing` with an old `claimed_at`, and the next spooler takes it again.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="print_jobs")
    printer = models.ForeignKey(
        Equipment, on_delete=models.PROTECT, related_name="print_jobs", verbose_name=_("printer")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=JobKind.choices)
    ticket = models.ForeignKey(
        "tickets.Ticket",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="print_jobs",
        verbose_name=_("ticket"),
    )
    # Receipts carry their plain data here; tickets are rendered from the ticket at print
    # time, so the position and wait printed are those of the moment of printing.
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=80, blank=True)
    printed_at = models.DateTimeField(_("printed at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("print job")
        verbose_name_plural = _("print jobs")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=JobKind.values), name="printjob_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="printjob_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=JobKind.TICKET) | Q(ticket__isnull=False),
                name="printjob_ticket_has_ticket",
            ),
        ]
        indexes = [
            # The spooler's claim: pending jobs whose time has come, oldest first.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status="pending"),
                name="printjob_due",
            ),
            # …and jobs whose claim (lease) has run out: a spooler died holding them.
            models.Index(
                fields=["claimed_at"], condition=Q(status="printing"), name="printjob_leased"
            ),
            models.Index(fields=["tenant", "-created_at"], name="printjob_tenant_recent"),
        ]

    def __str__(self) -> str:
        what = self.ticket.number if self.ticket_id else self.get_kind_display()
        return f"#{self.pk} {what} → {self.printer}"
