"""The ticket operations that print: a paid ticket to the printer or the queue, a reprint, a
ticket moved to the queue without paper, and what a printed or failed job does to its ticket.

Layouts and transports are equipment/printing.py (plain data in, bytes out); this module
turns a ticket into that data. Job rows are written in the caller's transaction, holding the
ticket's lock; the spooler prints after commit and settles the ticket through `printed` and
`print_failed`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from equipment.models import Equipment, JobKind, JobStatus, PrinterSettings, PrintJob, Status
from equipment.printing import (
    PrintingError,
    ReceiptData,
    ServiceLine,
    TicketPrint,
    render_receipt,
    render_test_page,
    render_ticket,
)
from tenants import audit
from tenants.models import AuditAction, Tenant
from tickets import credits, events
from tickets import queue as ticket_queue
from tickets.models import (
    Channel,
    LineStatus,
    Priority,
    Ticket,
    TicketStatus,
    change_ticket_status,
)

T = TicketStatus

# Ticket statuses in which a ticket job is still worth printing; a job for a ticket cancelled
# (or completed) meanwhile is cancelled instead.
PRINTABLE = (T.PAID, T.PRINTING, T.PRINT_ERROR, T.IN_QUEUE, T.CALLED, T.IN_PROGRESS)


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
        return ServiceLine(line.service.name, package=line.covered)
    place = ticket_queue.place_of(line)
    if place is None:
        ahead = ticket_queue.queue_lines(line.service).filter(priority_rank__lte=line.priority_rank)
        wait = ticket_queue.estimate_wait_minutes(
            ahead.count(),
            ticket_queue.devices_for(line.service),
            ticket_queue.round_seconds(line.service),
        )
        return ServiceLine(line.service.name, ahead.count() + 1, wait, package=line.covered)
    return ServiceLine(line.service.name, place.position, place.wait_minutes, package=line.covered)


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
    the ticket's lock (`mark_paid` does); the spooler prints after it commits.
    """
    printer = PrinterSettings.objects.ticket_printer(ticket.tenant)
    if printer is None:
        return None
    job = _ticket_job(ticket, printer.equipment, user)
    _count_print(ticket, user=user, reason=reason or _("sent to the printer"), to_printing=True)
    return job


def mark_paid(ticket: Ticket, *, user=None, reason: str = "") -> None:
    """`pending_payment → paid`, then to the printer (`printing`, a print job) when the tenant
    has an online ticket printer, else straight to the queue (a digital ticket). A ticket sold
    from the phone is always digital: its customer may be on the way, and a paper nobody
    takes would sit at the studio's printer (the panel still reprints it on request).

    Call inside the payment's transaction, holding the ticket's lock, so money and ticket move
    together. Only the job row is written here; the spooler prints after the commit.
    """
    change_ticket_status(ticket, T.PAID, user=user, reason=reason)
    # Packages bought on the ticket exist only once paid, and before it prints: the ticket
    # shows its sessions as "pacote".
    credits.grant_paid(ticket)
    digital = ticket.channel == Channel.PHONE
    if digital or send_ticket_to_printer(ticket, user=user, reason=reason) is None:
        ticket_queue.enter_queue(ticket, user=user, reason=reason)


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
        ticket = ticket_queue.lock_ticket(tenant, ticket_id)
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
        ticket = ticket_queue.lock_ticket(tenant, ticket_id)
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


# --- what the spooler's outcome does to the ticket (call holding the ticket's lock) ----------


def printed(ticket: Ticket) -> None:
    """The ticket's job came out of the printer: `printing → in_queue`.

    A ticket no longer `printing` (moved to the queue by hand, cancelled) stays as it is."""
    if ticket.status == T.PRINTING:
        ticket_queue.enter_queue(ticket, reason=_("ticket printed"))


def print_failed(ticket: Ticket, reason: str) -> None:
    """The ticket's job failed its last attempt: `printing → print_error`, with the reason."""
    if ticket.status == T.PRINTING:
        change_ticket_status(
            ticket, T.PRINT_ERROR, reason=_("print failed: %(reason)s") % {"reason": reason}
        )
        events.publish("ticket_update", tenant_id=ticket.tenant_id, ticket=ticket)
