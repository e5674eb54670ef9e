"""Thermal printing: the layouts, the transports, and the jobs that are not tickets.

Layouts are rendered with python-escpos onto a `Dummy` printer, into bytes; a transport then
sends those bytes through the printer's connection in one write. Rendering first keeps the
connection open only while sending, and a layout problem fails before any paper moves.

This module knows printers and bytes, nothing of tickets: a layout takes plain data
(`TicketPrint`, `ReceiptData`). The ticket operations that print (send a paid ticket to the
printer, reprint, what a printed or failed job does to its ticket) are tickets/printing.py.
Nothing prints inside a transaction: functions here only create `PrintJob` rows, and
`run_printer_spooler` prints them later (equipment/spooler.py).

One code page for the whole job (CP860, Portuguese): python-escpos's automatic mode switches
code pages mid-line, which cheap printers get wrong. Characters CP860 lacks are replaced by
their closest ASCII before encoding (`printable`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import textwrap
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, Serial, Usb

from equipment import destinations
from equipment.models import (
    Connection,
    Equipment,
    JobKind,
    Kind,
    PaperWidth,
    PrinterSettings,
    PrintJob,
    parse_usb_id,
)
from tenants.errors import DomainError
from tenants.models import Tenant
from tenants.money import brl

log = logging.getLogger(__name__)

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
    """`text` with every character CP860 can encode; others become their closest ASCII.

    Control and format characters never pass (C0, DEL, C1, line and paragraph separators,
    zero-width and bidi marks): line breaks and tabs become spaces, the others go. Tenant text
    (names, header, footer, services) then carries no byte a printer or any other listener
    reads as a command or a line end; the layout's own commands are the only ones.
    """
    text = str(text).translate(_ASCII)
    out = []
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            if char.isspace():
                out.append(" ")
            continue
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
        for part in textwrap.wrap(printable(text), self.columns) or [""]:
            # Each line starts with a command of ours, a wrapped one too: no line of the bytes
            # begins with tenant text, so none reads as a command (a Redis or SMTP line) to a
            # listener that is not a printer.
            self.p.set(align=align, bold=bold)
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
                # Transparent parts are paper, not black (a PNG logo's usual background).
                rgba = source.convert("RGBA")
        except OSError:
            log.warning("logo %s cannot be read; printing the name instead", path)
            return False
        image = Image.new("RGBA", rgba.size, "white")
        image.alpha_composite(rgba)
        image = image.convert("L")
        max_width = self.columns * 12  # 12 dots per column of font A
        image.thumbnail((max_width, LOGO_MAX_HEIGHT), Image.Resampling.LANCZOS)
        # A thermal head has no grey: Floyd–Steinberg dithering keeps a logo's shades as dot
        # density instead of a hard threshold that blackens or loses them.
        image = image.convert("1", dither=Image.Dither.FLOYDSTEINBERG)
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
    package: bool = False  # paid with a package session: "pacote" under its name


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
            if service.package:
                page.line("  " + pgettext("printed ticket", "package"))
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


# --- transports -------------------------------------------------------------------------------


def _missing(library: str, extra: str) -> PrinterUnavailable:
    return PrinterUnavailable(
        f"{library} is not installed: pip install 'python-escpos[{extra}]' on the spooler's machine"
    )


def send(printer: PrinterSettings, data: bytes) -> None:
    """Deliver `data` to the printer, or raise PrinterUnavailable with the reason.

    The destination is checked first, and the transport uses what was checked (the address,
    the real path): equipment/destinations.py.
    """
    try:
        checked = destinations.check(printer)
        match printer.connection:
            case Connection.NETWORK:
                with checked.connect(NETWORK_TIMEOUT) as sock:
                    sock.sendall(data)
            case Connection.FILE:
                # Appended, so a demo file keeps every ticket; a device file takes it the same.
                with checked.open() as out:
                    out.write(data)
            case Connection.SERIAL:
                if not Serial.is_usable():
                    raise _missing("pyserial", "serial")
                device = Serial(
                    str(checked.path), baudrate=printer.baudrate, timeout=NETWORK_TIMEOUT
                )
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
    except destinations.DestinationRefused as error:
        raise PrinterUnavailable(error.message) from error
    except FileNotFoundError as error:
        raise PrinterUnavailable(f"not found: {error.filename or error}") from error
    except (OSError, EscposError, ValueError, subprocess.SubprocessError) as error:
        raise PrinterUnavailable(" ".join(str(error).split()) or type(error).__name__) from error


def probe(printer: PrinterSettings) -> str:
    """Whether the printer can be reached right now: "" if so, else the reason (heartbeat).

    Checked like `send`: a connection the platform does not allow is not even tried.
    """
    try:
        checked = destinations.check(printer)
        match printer.connection:
            case Connection.NETWORK:
                with checked.connect(NETWORK_TIMEOUT):
                    return ""
            case Connection.FILE:
                # Writable, or creatable: `send` makes the missing folders (var/ on a fresh
                # checkout), so the nearest existing one must be writable.
                path = checked.path
                target = path
                while not target.exists():
                    target = target.parent
                if os.access(target, os.W_OK) and (target == path or target.is_dir()):
                    return ""
                return f"cannot write to {path}"
            case Connection.SERIAL:
                if not Serial.is_usable():
                    return str(_missing("pyserial", "serial"))
                return "" if checked.path.exists() else f"no device {printer.device}"
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
    except destinations.DestinationRefused as error:
        return error.message
    except (OSError, EscposError, ValueError, subprocess.SubprocessError) as error:
        return " ".join(str(error).split()) or type(error).__name__
    return f"unknown connection {printer.connection}"


# --- queueing jobs (no I/O: rows only, in the caller's transaction) ---------------------------


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
