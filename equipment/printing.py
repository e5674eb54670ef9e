"""Thermal printing: the layouts, the transports, and the domain functions that queue jobs.

Layouts are rendered with python-escpos onto a `Dummy` printer, into bytes; a transport then
sends those bytes through the printer's connection in one write. Rendering first keeps the
connection open only while sending, and a layout problem fails before any paper moves.

Nothing here prints inside a transaction: the domain functions only create `PrintJob` rows
(in the caller's transaction, holding the ticket's lock), and `run_printer_spooler` prints
them later (equipment/spooler.py).

One code page for the whole job (CP860, Portuguese): python-escpos's automatic mode switches
code pages mid-line, which cheap printers get wrong. Characters CP860 lacks are replaced by
their closest ASCII before encoding (`printable`).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import textwrap
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, Network, Serial, Usb

from equipment.models import (
    Connection,
    Equipment,
    JobKind,
    JobStatus,
    Kind,
    PaperWidth,
    PrinterSettings,
    PrintJob,
    Status,
    parse_usb_id,
)
from tenants import audit
from tenants.models import AuditAction, Tenant
from tickets import events
from tickets import queue as ticket_queue
from tickets.errors import DomainError
from tickets.models import LineStatus, Priority, Ticket, TicketStatus, change_ticket_status
from tickets.money import brl

log = logging.getLogger(__name__)
T = TicketStatus

CODE_PAGE = "CP860"
# Seconds to connect to (and write to) a network printer; well inside the spooler's lease.
NETWORK_TIMEOUT = 5
# Largest logo, in printer dots (8 dots/mm: 48 mm and 72 mm printable on 58 and 80 mm paper).
LOGO_MAX_HEIGHT = 160


class PrintingError(DomainError):
    """A print request refused: nothing to print, no printer, already printing…"""


class PrinterUnavailable(Exception):
    """A transport could not deliver the bytes; the message says why, for the job's error."""


# --- text helpers ---------------------------------------------------------------------------

# Typography CP860 lacks, replaced by what a thermal printer can show.
_ASCII = str.maketrans(
    {
        "—": "-",
        "–": "-",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "…": "...",
        "×": "x",
        "•": "*",
        "→": "->",
        "€": "EUR",
    }
)


def printable(text: str) -> str:
    """`text` with every character CP860 can encode; others become their closest ASCII."""
    text = str(text).translate(_ASCII)
    out = []
    for char in text:
        try:
            char.encode("cp860")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(base or "?")
    return "".join(out)


def two_columns(left: str, right: str, columns: int) -> str:
    """`left` and `right` on one line of `columns`, `left` cut short when it does not fit."""
    room = columns - len(right) - 1
    if len(left) > room:
        left = left[: max(room - 1, 0)] + "."
    return f"{left}{' ' * (columns - len(left) - len(right))}{right}"


class Page:
    """A job being rendered: a Dummy ESC/POS printer plus the paper's column count."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.p = Dummy()
        self.p.hw("INIT")  # a clean state whatever the last job left behind
        self.p.charcode(CODE_PAGE)

    def line(self, text: str = "", *, align: str = "left", bold: bool = False) -> None:
        self.p.set(align=align, bold=bold)
        for part in textwrap.wrap(printable(text), self.columns) or [""]:
            self.p.textln(part)
        if bold:
            self.p.set(bold=False)

    def lines(self, text: str, *, align: str = "center") -> None:
        for paragraph in (text or "").splitlines():
            self.line(paragraph, align=align)

    def rule(self) -> None:
        self.p.set(align="left")
        self.p.textln("-" * self.columns)

    def big(self, text: str) -> None:
        """Double width and height, centred: the ticket number."""
        self.p.set(align="center", bold=True, double_width=True, double_height=True)
        self.p.textln(printable(text))
        self.p.set(normal_textsize=True, bold=False)

    def inverted(self, text: str) -> None:
        self.p.set(align="center", bold=True, invert=True)
        self.p.textln(printable(f" {text} "))
        self.p.set(bold=False, invert=False)

    def logo(self, path: str) -> bool:
        """Print the image at `path` scaled to the paper; False (and nothing) if unreadable."""
        from PIL import Image

        try:
            with Image.open(path) as source:
                image = source.convert("L")
        except OSError:
            log.warning("logo %s cannot be read; printing the name instead", path)
            return False
        max_width = self.columns * 12  # 12 dots per column of font A
        image.thumbnail((max_width, LOGO_MAX_HEIGHT))
        self.p.set(align="center")
        self.p.image(image)
        return True

    def qr(self, data: str) -> None:
        # native=True: the printer draws the code from a GS ( k command (small, sharp); the
        # default would send a raster image.
        self.p.set(align="center")
        self.p.qr(data, native=True, size=6 if self.columns >= 48 else 5)

    def finish(self) -> bytes:
        self.p.cut()
        return self.p.output


# --- the ticket -------------------------------------------------------------------------------


@dataclass
class ServiceLine:
    name: str
    position: int | None = None  # 1 = next; None when the line is no longer waiting
    wait_minutes: int | None = None


@dataclass
class TicketPrint:
    """Everything printed on a ticket, as plain data."""

    tenant_name: str
    number: str
    services: list[ServiceLine]
    issued_at: datetime  # already in the tenant's time zone
    status_url: str
    priority: str = ""  # the priority mark, empty for a normal ticket
    header: str = ""
    footer: str = ""
    logo_path: str = ""


def status_url(ticket: Ticket) -> str:
    """The ticket's public status page, followed from the phone through the QR code."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/t/{ticket.tenant.slug}/senha/{ticket.token}/"


def expected_place(line) -> ServiceLine:
    """Position and wait of a service line, as printed.

    A ticket is printed before it enters the queue (`printing`), so its lines have no place
    yet: we print the place it takes on entering now — behind every line already waiting
    in its priority class or a higher one. A second later it is exactly that.
    """
    if line.status != LineStatus.WAITING:
        return ServiceLine(line.service.name)
    place = ticket_queue.place_of(line)
    if place is None:
        ahead = ticket_queue.queue_lines(line.service).filter(priority_rank__lte=line.priority_rank)
        wait = ticket_queue.estimate_wait_minutes(
            ahead.count(),
            ticket_queue.devices_for(line.service),
            ticket_queue.average_duration_seconds(line.service),
        )
        return ServiceLine(line.service.name, ahead.count() + 1, wait)
    return ServiceLine(line.service.name, place.position, place.wait_minutes)


def ticket_print_data(ticket: Ticket, printer: PrinterSettings) -> TicketPrint:
    tenant = ticket.tenant
    lines = ticket.lines.select_related("service").order_by("position", "id")
    return TicketPrint(
        tenant_name=tenant.name,
        number=ticket.number,
        services=[expected_place(line) for line in lines if line.status != LineStatus.CANCELLED],
        issued_at=timezone.localtime(ticket.paid_at or ticket.created_at, tenant.tzinfo),
        status_url=status_url(ticket),
        priority=(
            "" if ticket.priority == Priority.NORMAL else Priority(ticket.priority).label.upper()
        ),
        header=printer.header_text,
        footer=printer.footer_text,
        logo_path=tenant.logo.path if printer.print_logo and tenant.logo else "",
    )


def _heading(page: Page, tenant_name: str, logo_path: str, header: str) -> None:
    if not (logo_path and page.logo(logo_path)):
        page.line(tenant_name, align="center", bold=True)
    page.lines(header)


def render_ticket(data: TicketPrint, columns: int) -> bytes:
    with translation.override(settings.LANGUAGE_CODE):
        page = Page(columns)
        _heading(page, data.tenant_name, data.logo_path, data.header)
        page.rule()
        page.line(_("YOUR TICKET"), align="center")
        page.big(data.number)
        if data.priority:
            page.inverted(data.priority)
        page.rule()
        for service in data.services:
            page.line(service.name, bold=True)
            if service.position is not None:
                wait = (
                    _("no wait")
                    if not service.wait_minutes
                    else _("about %(n)s min") % {"n": service.wait_minutes}
                )
                page.line(
                    "  "
                    + _("position %(position)s · %(wait)s")
                    % {"position": service.position, "wait": wait}
                )
        page.rule()
        page.line(data.issued_at.strftime("%d/%m/%Y %H:%M"), align="center")
        page.line()
        page.qr(data.status_url)
        page.line(_("Follow your ticket on your phone"), align="center")
        page.line(_("Position and wait are estimates."), align="center")
        page.lines(data.footer)
        return page.finish()


# --- the receipt ------------------------------------------------------------------------------


@dataclass
class ReceiptItem:
    description: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class ReceiptData:
    """A receipt as plain data: what the payments app hands over to be printed."""

    tenant_name: str
    code: str
    issued_at: datetime  # aware
    items: list[ReceiptItem]
    total: Decimal
    method: str  # as printed: "PIX", "Cartão", "Dinheiro"
    ticket_number: str = ""
    time_zone: str = "America/Sao_Paulo"
    lines_after: list[str] = field(default_factory=list)  # e.g. "Troco: R$ 5,00"

    def to_payload(self) -> dict:
        """JSON for `PrintJob.payload`: amounts as strings, the time in ISO 8601."""
        data = asdict(self)
        data["issued_at"] = self.issued_at.isoformat()
        data["total"] = str(self.total)
        for item in data["items"]:
            item["unit_price"] = str(item["unit_price"])
        return data

    @classmethod
    def from_payload(cls, data: dict) -> ReceiptData:
        data = dict(data)
        data["issued_at"] = datetime.fromisoformat(data["issued_at"])
        data["total"] = Decimal(data["total"])
        data["items"] = [
            ReceiptItem(i["description"], int(i["quantity"]), Decimal(i["unit_price"]))
            for i in data["items"]
        ]
        return cls(**data)


def render_receipt(
    data: ReceiptData, columns: int, *, header: str = "", footer: str = "", logo_path: str = ""
) -> bytes:
    import zoneinfo

    with translation.override(settings.LANGUAGE_CODE):
        page = Page(columns)
        _heading(page, data.tenant_name, logo_path, header)
        page.rule()
        page.line(_("RECEIPT %(code)s") % {"code": data.code}, align="center", bold=True)
        when = timezone.localtime(data.issued_at, zoneinfo.ZoneInfo(data.time_zone))
        page.line(when.strftime("%d/%m/%Y %H:%M"), align="center")
        if data.ticket_number:
            page.line(_("Ticket %(number)s") % {"number": data.ticket_number}, align="center")
        page.rule()
        for item in data.items:
            name = printable(item.description)
            if item.quantity != 1:
                name = f"{item.quantity} x {name}"
            page.line(two_columns(name, brl(item.total), columns))
        page.rule()
        page.line(two_columns(_("TOTAL"), brl(data.total), columns), bold=True)
        page.line(_("Paid with %(method)s") % {"method": data.method})
        for extra in data.lines_after:
            page.line(extra)
        page.line()
        # Not an NFC-e: a studio owner must not mistake this for a tax document.
        page.line(_("Not a tax document."), align="center")
        page.lines(footer)
        return page.finish()


def render_test_page(printer: PrinterSettings) -> bytes:
    with translation.override(settings.LANGUAGE_CODE):
        page = Page(printer.columns)
        tenant = printer.equipment.tenant
        logo = tenant.logo.path if printer.print_logo and tenant.logo else ""
        _heading(page, tenant.name, logo, printer.header_text)
        page.rule()
        page.line(_("TEST PAGE"), align="center", bold=True)
        page.line(printer.equipment.name, align="center")
        page.line(f"{printer.get_connection_display()} {printer.address}", align="center")
        page.line(PaperWidth(printer.paper_width).label, align="center")
        page.line(timezone.localtime(timezone.now(), tenant.tzinfo).strftime("%d/%m/%Y %H:%M"))
        page.rule()
        page.line("0123456789" * (printer.columns // 10) + "0123456789"[: printer.columns % 10])
        page.line("ÁÉÍÓÚ ÂÊÔ ÃÕ À Ç áéíóú âêô ãõ à ç º ª")
        page.line("Bota de compressão · Sauna · Crioterapia")
        page.big("A001")
        page.qr(settings.PUBLIC_BASE_URL)
        page.lines(printer.footer_text)
        return page.finish()


def render_job(job: PrintJob) -> bytes:
    """The bytes of a job, rendered now (a ticket shows its position at the time of print)."""
    printer = job.printer.printer_settings
    if job.kind == JobKind.TICKET:
        return render_ticket(ticket_print_data(job.ticket, printer), printer.columns)
    if job.kind == JobKind.RECEIPT:
        tenant = job.tenant
        return render_receipt(
            ReceiptData.from_payload(job.payload),
            printer.columns,
            header=printer.header_text,
            footer=printer.footer_text,
            logo_path=tenant.logo.path if printer.print_logo and tenant.logo else "",
        )
    return render_test_page(printer)


# --- transports -------------------------------------------------------------------------------


def _file_path(device: str) -> Path:
    path = Path(device).expanduser()
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def _missing(library: str, extra: str) -> PrinterUnavailable:
    return PrinterUnavailable(
        f"{library} is not installed: pip install 'python-escpos[{extra}]' on the spooler's machine"
    )


def send(printer: PrinterSettings, data: bytes) -> None:
    """Deliver `data` to the printer, or raise PrinterUnavailable with the reason."""
    try:
        match printer.connection:
            case Connection.NETWORK:
                device = Network(printer.host, printer.port, timeout=NETWORK_TIMEOUT)
                device.open()
                try:
                    # python-escpos exposes raw writes only as `_raw`; the job is pre-rendered.
                    device._raw(data)
                finally:
                    device.close()
            case Connection.FILE:
                # Appended, so a demo file keeps every ticket; a device file takes it the same.
                path = _file_path(printer.device)
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as out:
                    out.write(data)
            case Connection.SERIAL:
                if not Serial.is_usable():
                    raise _missing("pyserial", "serial")
                device = Serial(printer.device, baudrate=printer.baudrate, timeout=NETWORK_TIMEOUT)
                device.open()
                try:
                    device._raw(data)
                finally:
                    device.close()
            case Connection.USB:
                if not Usb.is_usable():
                    raise _missing("pyusb", "usb")
                vendor, product = parse_usb_id(printer.device)
                device = Usb(vendor, product, timeout=NETWORK_TIMEOUT * 1000)
                device.open()
                try:
                    device._raw(data)
                finally:
                    device.close()
            case Connection.CUPS:
                # Through the `lp` command rather than pycups, which needs CUPS headers to
                # build; `-o raw` passes the ESC/POS bytes untouched.
                done = subprocess.run(
                    ["lp", "-d", printer.device, "-o", "raw"],
                    input=data,
                    capture_output=True,
                    timeout=NETWORK_TIMEOUT * 2,
                    check=False,
                )
                if done.returncode:
                    message = done.stderr.decode(errors="replace").strip()
                    raise PrinterUnavailable(f"lp: {message or done.returncode}")
    except PrinterUnavailable:
        raise
    except FileNotFoundError as error:
        raise PrinterUnavailable(f"not found: {error.filename or error}") from error
    except (OSError, EscposError, ValueError, subprocess.SubprocessError) as error:
        raise PrinterUnavailable(" ".join(str(error).split()) or type(error).__name__) from error


def probe(printer: PrinterSettings) -> str:
    """Whether the printer can be reached right now: "" if so, else the reason (heartbeat)."""
    try:
        match printer.connection:
            case Connection.NETWORK:
                with socket.create_connection((printer.host, printer.port), NETWORK_TIMEOUT):
                    return ""
            case Connection.FILE:
                # Writable, or creatable: `send` makes the missing folders (var/ on a fresh
                # checkout), so the nearest existing one must be writable.
                path = _file_path(printer.device)
                target = path
                while not target.exists():
                    target = target.parent
                if os.access(target, os.W_OK) and (target == path or target.is_dir()):
                    return ""
                return f"cannot write to {path}"
            case Connection.SERIAL:
                if not Serial.is_usable():
                    return str(_missing("pyserial", "serial"))
                return "" if os.path.exists(printer.device) else f"no device {printer.device}"
            case Connection.USB:
                if not Usb.is_usable():
                    return str(_missing("pyusb", "usb"))
                vendor, product = parse_usb_id(printer.device)
                device = Usb(vendor, product)
                device.open()
                device.close()
                return ""
            case Connection.CUPS:
                done = subprocess.run(
                    ["lpstat", "-p", printer.device],
                    capture_output=True,
                    timeout=NETWORK_TIMEOUT,
                    check=False,
                )
                return "" if done.returncode == 0 else f"CUPS queue {printer.device} not found"
    except (OSError, EscposError, ValueError, subprocess.SubprocessError) as error:
        return " ".join(str(error).split()) or type(error).__name__
    return f"unknown connection {printer.connection}"


# --- queueing jobs (no I/O: rows only, in the caller's transaction) ---------------------------


def _count_print(ticket: Ticket, *, user, reason: str, to_printing: bool) -> None:
    """Count one more print of the locked ticket, in its history with who and why."""
    ticket.print_attempts += 1
    if to_printing:
        # The count first, without a history row of its own: the status change's history
        # row is a copy of the database row, so it then shows the new count.
        Ticket.objects.filter(pk=ticket.pk).update(print_attempts=ticket.print_attempts)
        change_ticket_status(ticket, T.PRINTING, user=user, reason=reason)
    else:
        ticket._history_user = user if user is not None and user.is_authenticated else None
        ticket._change_reason = reason[:100]
        ticket.save(update_fields=["print_attempts", "updated_at"])
    events.publish("ticket_update", tenant_id=ticket.tenant_id, ticket=ticket)


def _ticket_job(ticket: Ticket, printer: Equipment, user) -> PrintJob:
    return PrintJob.objects.create(
        tenant=ticket.tenant,
        printer=printer,
        kind=JobKind.TICKET,
        ticket=ticket,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def send_ticket_to_printer(ticket: Ticket, *, user=None, reason: str = "") -> PrintJob | None:
    """`paid → printing` with a job on the tenant's online ticket printer.

    Returns None, changing nothing, when the tenant has no such printer: the ticket is then
    digital only and the caller puts it in the queue. Call inside the transaction that holds
    the ticket's lock (tickets.queue.mark_paid does); the spooler prints after it commits.
    """
    printer = PrinterSettings.objects.ticket_printer(ticket.tenant)
    if printer is None:
        return None
    job = _ticket_job(ticket, printer.equipment, user)
    _count_print(ticket, user=user, reason=reason or _("sent to the printer"), to_printing=True)
    return job


def _lock_ticket(tenant: Tenant, ticket_id: int) -> Ticket:
    try:
        return Ticket.objects.select_for_update().get(tenant=tenant, pk=ticket_id)
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise PrintingError(_("Ticket not found.")) from None


def _printer_for_reprint(ticket: Ticket) -> PrinterSettings | None:
    """The online ticket printer; else any ticket printer not in maintenance — the operator
    who asks for a reprint has usually just fixed it, and the attempt is the test."""
    found = PrinterSettings.objects.ticket_printer(ticket.tenant)
    if found is not None:
        return found
    return (
        PrinterSettings.objects.alive()
        .filter(equipment__tenant=ticket.tenant, prints_tickets=True)
        .exclude(equipment__status=Status.MAINTENANCE)
        .select_related("equipment")
        .order_by("equipment__name", "pk")
        .first()
    )


REPRINTABLE = (T.PRINTING, T.PRINT_ERROR, T.IN_QUEUE, T.CALLED, T.IN_PROGRESS)


def reprint(tenant: Tenant, ticket_id: int, user=None) -> PrintJob:
    """Print a ticket again: after a print error (`print_error → printing`), or because the
    customer lost the paper (status unchanged). Counted on `print_attempts`, in the history."""
    with transaction.atomic():
        ticket = _lock_ticket(tenant, ticket_id)
        if ticket.status not in REPRINTABLE:
            raise PrintingError(
                _("Ticket %(number)s is %(status)s: there is nothing to print.")
                % {"number": ticket.number, "status": ticket.get_status_display().lower()}
            )
        active = ticket.print_jobs.filter(
            kind=JobKind.TICKET, status__in=[JobStatus.PENDING, JobStatus.PRINTING]
        )
        if active.exists():
            raise PrintingError(
                _("Ticket %(number)s is already being printed.") % {"number": ticket.number}
            )
        printer = _printer_for_reprint(ticket)
        if printer is None:
            raise PrintingError(_("This studio has no ticket printer in service."))
        job = _ticket_job(ticket, printer.equipment, user)
        _count_print(
            ticket,
            user=user,
            reason=_("reprint"),
            to_printing=ticket.status == T.PRINT_ERROR,
        )
        audit.record(
            AuditAction.REPRINT,
            tenant=tenant,
            user=user,
            entity=ticket,
            data={"ticket": ticket.number, "job": job.pk, "attempts": ticket.print_attempts},
        )
    return job


def move_to_queue(tenant: Tenant, ticket_id: int, user=None) -> Ticket:
    """`print_error → in_queue`: the customer waits without paper (the kiosk showed the
    number, and the status page has it); lines keep no earlier place, they had none."""
    with transaction.atomic():
        ticket = _lock_ticket(tenant, ticket_id)
        if ticket.status != T.PRINT_ERROR:
            raise PrintingError(
                _(
                    "Only a ticket with a print error can be moved to the queue; %(number)s is "
                    "%(status)s."
                )
                % {"number": ticket.number, "status": ticket.get_status_display().lower()}
            )
        ticket_queue.enter_queue(ticket, user=user, reason=_("moved to the queue without printing"))
    return ticket


def queue_receipt(
    tenant: Tenant, data: ReceiptData, *, user=None, printer: Equipment | None = None
) -> PrintJob | None:
    """A receipt job on `printer` or the tenant's online receipt printer; None without one.

    Safe inside the payment's transaction: it only writes the job row.
    """
    if printer is None:
        found = PrinterSettings.objects.receipt_printer(tenant)
        if found is None:
            return None
        printer = found.equipment
    return PrintJob.objects.create(
        tenant=tenant,
        printer=printer,
        kind=JobKind.RECEIPT,
        payload=data.to_payload(),
        created_by=user if user is not None and user.is_authenticated else None,
    )


def print_test_page(printer: Equipment, *, user=None) -> PrintJob:
    """Queue a test page (admin action): proves connection, paper width and accents."""
    if printer.kind != Kind.PRINTER or not hasattr(printer, "printer_settings"):
        raise PrintingError(_("%(device)s has no printer settings.") % {"device": printer.name})
    return PrintJob.objects.create(
        tenant_id=printer.tenant_id,
        printer=printer,
        kind=JobKind.TEST_PAGE,
        created_by=user if user is not None and user.is_authenticated else None,
    )
