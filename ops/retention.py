"""Retention and LGPD: anonymise old customer data, delete what is past its keeping, and answer
a customer's request for their data (export) or its erasure, by CPF.

Customer data lives in the ticket (name, CPF, phone, operator notes), in each service line's
`customer_key` (the CPF, when one was given), in the history tables of both, which keep every
past version, and in a WhatsApp opt-in's copy of the phone: anonymising touches all of them. A
customer record (customers.Customer) is deleted; the packages it bought stay as sales without
it. Statistics (DailyStats) and the audit log hold no personal data and are kept by their own
rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from fiscal.models import Invoice
from messaging.models import Feedback, Subscription
from messaging.optin import forget as forget_whatsapp
from ops.models import Alert
from payments.models import Notification, PaymentSession, Receipt
from tenants import partitions
from tenants.audit import record
from tenants.br import mask_cpf
from tenants.errors import DomainError
from tenants.models import AuditAction, AuditLog, OutboxStatus, Tenant, WebhookOutbox
from tickets import credits
from tickets.models import (
    CreditEntry,
    CustomerPackage,
    DailyCounter,
    PackageSharing,
    Ticket,
    TicketLine,
    Waiver,
)

ANONYMOUS = ""
PERSONAL = {
    "customer_name": ANONYMOUS,
    "customer_cpf": "",
    "customer_phone": "",
    "operator_notes": "",
}
DEFAULT_ANONYMISE_DAYS = 90
DEFAULT_RETENTION_DAYS = 365
DEFAULT_AUDIT_DAYS = 180
# Delivered or abandoned webhook events are only a delivery log after this.
OUTBOX_DAYS = 30
# A health form signed on a kiosk whose purchase was abandoned (no ticket, no customer).
UNUSED_WAIVER_DAYS = 1


def _not_anonymised() -> Q:
    return (
        ~Q(customer_name=ANONYMOUS)
        | ~Q(customer_cpf="")
        | ~Q(customer_phone="")
        | ~Q(operator_notes="")
    )


def anonymise_tickets(ticket_ids: list[int]) -> int:
    """Blank the personal fields of these tickets, of their history and of their lines.

    A line's `customer_key` becomes the ticket's token, which is what a ticket without CPF
    uses anyway: the one-customer-at-a-time rule still holds for a ticket still open.
    """
    token = Subquery(Ticket.objects.filter(pk=OuterRef("ticket_id")).values("token")[:1])
    with transaction.atomic():
        count = Ticket.objects.filter(pk__in=ticket_ids).update(**PERSONAL)
        Ticket.history.model.objects.filter(id__in=ticket_ids).update(**PERSONAL)
        TicketLine.objects.filter(ticket_id__in=ticket_ids).update(customer_key=token)
        TicketLine.history.model.objects.filter(ticket_id__in=ticket_ids).update(customer_key=token)
        forget_whatsapp(ticket_ids)
        # A walk-in's health form served only its ticket; a customer's stays with the record.
        Waiver.objects.filter(ticket_id__in=ticket_ids, customer__isnull=True).delete()
        # Our copy of the CPF a customer asked to have on an NFS-e; the NFS-e itself is the
        # national system's, kept by law.
        invoices = Invoice.objects.filter(items__session__ticket_id__in=ticket_ids)
        named = {"customer_cpf": "", "customer_name": ""}
        Invoice.history.model.objects.filter(id__in=invoices.values("pk")).update(**named)
        invoices.update(**named)
    return count


def delete_tickets(ticket_ids: list[int]) -> dict[str, int]:
    """Delete tickets with everything that hangs on them: receipts, payments, print jobs,
    lines, extras and their history. Returns the number of rows deleted per model."""
    deleted: dict[str, int] = {}

    def note(result: tuple[int, dict[str, int]]) -> None:
        for label, n in result[1].items():
            deleted[label] = deleted.get(label, 0) + n

    with transaction.atomic():
        sessions = PaymentSession.objects.filter(ticket_id__in=ticket_ids)
        note(Receipt.objects.filter(session__in=sessions).delete())
        note(sessions.delete())
        note(Ticket.objects.filter(pk__in=ticket_ids).delete())
        # Last: deleting a row makes simple-history write one more version of it ("-"),
        # with every personal field in it.
        histories = [
            (Ticket.history.model, "id"),
            (TicketLine.history.model, "ticket_id"),
            (PaymentSession.history.model, "ticket_id"),
        ]
        for model, key in histories:
            note(model.objects.filter(**{f"{key}__in": ticket_ids}).delete())
    return deleted


@dataclass
class PurgeReport:
    """What a purge did (or, dry, would do), by step."""

    anonymised: int = 0
    tickets_deleted: int = 0
    rows_deleted: dict[str, int] = field(default_factory=dict)
    audit_deleted: int = 0
    outbox_deleted: int = 0
    alerts_deleted: int = 0
    counters_deleted: int = 0
    customers_deleted: int = 0
    waivers_deleted: int = 0
    notifications_deleted: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _batches(queryset: QuerySet, size: int, apply: bool):
    """Yield lists of primary keys, paging by key: a row that a batch could not change is
    never read again, so no loop can spin on it."""
    last = 0
    while True:
        ids = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return
        last = ids[-1]
        yield ids


def purge(
    *,
    anonymise_days: int = DEFAULT_ANONYMISE_DAYS,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    audit_days: int = DEFAULT_AUDIT_DAYS,
    batch_size: int = 500,
    apply: bool = False,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> PurgeReport:
    """Anonymise, then delete what is past its retention, in batches of `batch_size`, each in
    its own transaction (a long purge never holds locks the kiosks wait on). Dry by default.
    """
    now = now or timezone.now()
    report = PurgeReport()
    verb = "" if apply else "would be "

    anonymise_before = now - timedelta(days=anonymise_days)
    delete_before = now - timedelta(days=retention_days)
    # Tickets past the retention are deleted below: anonymising them first is wasted work.
    old = Ticket.objects.filter(
        created_at__lt=anonymise_before, created_at__gte=delete_before
    ).filter(_not_anonymised())
    for ids in _batches(old, batch_size, apply):
        report.anonymised += anonymise_tickets(ids) if apply else len(ids)
        progress(f"tickets {verb}anonymised: {report.anonymised}")

    expired = Ticket.objects.filter(created_at__lt=delete_before)
    for ids in _batches(expired, batch_size, apply):
        if apply:
            for label, n in delete_tickets(ids).items():
                report.rows_deleted[label] = report.rows_deleted.get(label, 0) + n
        report.tickets_deleted += len(ids)
        progress(f"tickets {verb}deleted: {report.tickets_deleted}")
    # A customer unseen for the retention period, with no session left in a live package:
    # their tickets are gone (or going) and nothing they paid for is still owed.
    owed = (
        CustomerPackage.objects.live(now)
        .filter(Q(credits__balance__gt=0) | Q(credits__balance__isnull=True))
        .values("customer")
    )
    report.customers_deleted = _delete_all(
        Customer.objects.filter(last_seen_at__lt=delete_before).exclude(pk__in=owed),
        batch_size,
        apply,
    )
    progress(f"customers {verb}deleted: {report.customers_deleted}")
    # Health forms: expired for the retention period, or signed for a purchase never made.
    report.waivers_deleted = _delete_all(
        Waiver.objects.filter(
            Q(valid_until__lt=delete_before)
            | Q(
                ticket__isnull=True,
                customer__isnull=True,
                signed_at__lt=now - timedelta(days=UNUSED_WAIVER_DAYS),
            )
        ),
        batch_size,
        apply,
    )
    progress(f"health waivers {verb}deleted: {report.waivers_deleted}")
    report.counters_deleted = _delete_all(
        DailyCounter.objects.filter(day__lt=delete_before.date()), batch_size, apply
    )
    # Provider notifications carry the payer's details in their body.
    report.notifications_deleted = _delete_all(
        Notification.objects.filter(received_at__lt=delete_before), batch_size, apply
    )

    audit_before = now - timedelta(days=audit_days)
    report.audit_deleted = _delete_all(
        AuditLog.objects.filter(created_at__lt=audit_before), batch_size, apply
    )
    progress(f"audit entries {verb}deleted: {report.audit_deleted}")
    report.alerts_deleted = _delete_all(
        Alert.objects.filter(resolved_at__lt=audit_before), batch_size, apply
    )
    report.outbox_deleted = _delete_all(
        WebhookOutbox.objects.filter(
            created_at__lt=now - timedelta(days=OUTBOX_DAYS),
            status__in=[OutboxStatus.DELIVERED, OutboxStatus.FAILED],
        ),
        batch_size,
        apply,
    )
    if apply:
        record(
            AuditAction.DATA_PURGED,
            tenant=None,
            entity="",
            data={
                "anonymise_days": anonymise_days,
                "retention_days": retention_days,
                "audit_days": audit_days,
                **report.as_dict(),
            },
        )
    return report


def _delete_all(queryset: QuerySet, size: int, apply: bool) -> int:
    if not apply:
        return queryset.count()
    total = 0
    for ids in _batches(queryset, size, apply):
        with transaction.atomic():
            total += (
                queryset.model.objects.filter(pk__in=ids)
                .delete()[1]
                .get(queryset.model._meta.label, 0)
            )
    return total


# --- monthly partitions (PostgreSQL) ---------------------------------------------------------

# Months made ahead of today: the DEFAULT partition catches a row of a month missing all the
# same, but moving rows out of it later takes a lock a ready partition never needs.
PARTITIONS_AHEAD = 2


def partition_keeping() -> dict[str, int]:
    """Days each partitioned table keeps: the audit log as the audit rule (seed 003 §9), the
    history of tickets, lines and payments as the tickets themselves (their rows go with the
    tickets past the retention, see `delete_tickets`)."""
    return {
        AuditLog._meta.db_table: DEFAULT_AUDIT_DAYS,
        Ticket.history.model._meta.db_table: DEFAULT_RETENTION_DAYS,
        TicketLine.history.model._meta.db_table: DEFAULT_RETENTION_DAYS,
        PaymentSession.history.model._meta.db_table: DEFAULT_RETENTION_DAYS,
    }


def keep_partitions(
    *, now: datetime | None = None, progress: Callable[[str], None] = lambda line: None
) -> tuple[list[str], list[str]]:
    """Create the current and the next `PARTITIONS_AHEAD` months of every partitioned table
    and drop the months past its keeping; return (created, dropped). Safe to repeat. A table
    without a rule here is never dropped from."""
    now = now or timezone.now()
    keeping = partition_keeping()
    created: list[str] = []
    dropped: list[str] = []
    for table in partitions.partitioned_tables(connection):
        with transaction.atomic():
            made = partitions.ensure_months(
                connection, table, partitions.month_start(now), PARTITIONS_AHEAD + 1
            )
            gone = (
                partitions.drop_months_before(
                    connection, table, now - timedelta(days=keeping[table])
                )
                if table in keeping
                else []
            )
        progress(f"{table}: {len(made)} created, {len(gone)} dropped")
        created += made
        dropped += gone
    return created, dropped


# --- LGPD requests --------------------------------------------------------------------------


def _tickets_of(tenant: Tenant, cpf: str) -> QuerySet:
    return Ticket.objects.for_tenant(tenant).filter(customer_cpf=cpf)


def export_customer(tenant: Tenant, cpf: str, *, user=None, request=None) -> dict:
    """Everything the tenant holds about a CPF, as plain data (the customer's copy)."""
    tickets = []
    for ticket in _tickets_of(tenant, cpf).prefetch_related("lines__service", "extras__extra"):
        item = {
            "number": ticket.number,
            "day": ticket.day,
            "status": ticket.status,
            "name": ticket.customer_name,
            "cpf": ticket.customer_cpf,
            "phone": ticket.customer_phone,
            "priority": ticket.priority,
            "consent_version": ticket.consent_version,
            "total": ticket.total,
            "created_at": ticket.created_at,
            "services": [
                {"service": line.service.name, "status": line.status, "price": line.price}
                for line in ticket.lines.all()
            ],
            "extras": [
                {"extra": e.extra.name, "quantity": e.quantity, "unit_price": e.unit_price}
                for e in ticket.extras.all()
            ],
        }
        # What the phone pages and WhatsApp kept: the opt-in (without the number, above) and
        # the customer's own rating.
        item["whatsapp"] = list(
            Subscription.objects.filter(ticket=ticket).values(
                "consent_version", "opted_in_at", "opted_out_at", "opted_out_via"
            )
        )
        item["feedback"] = [
            {"comment": f.comment, "scores": [s.score for s in f.scores.all()]}
            for f in Feedback.objects.filter(ticket=ticket).prefetch_related("scores")
        ]
        item["payments"] = list(
            PaymentSession.objects.filter(ticket=ticket).values(
                "method", "status", "amount", "created_at", "paid_at", "refunded_at"
            )
        )
        tickets.append(item)
    record(
        AuditAction.DATA_EXPORTED,
        tenant=tenant,
        user=user,
        entity="tickets.ticket",
        data={"cpf": mask_cpf(cpf), "tickets": len(tickets)},
        request=request,
    )
    return {
        "company": tenant.name,
        "exported_at": timezone.now(),
        "customer": _customer_record(tenant, cpf),
        # Packages another customer named this CPF on (not who: that is the owner's data).
        "packages_shared_with_you": [
            {"package": s.customer_package.package.name, "added_at": s.added_at}
            for s in PackageSharing.objects.filter(tenant=tenant, cpf=cpf).select_related(
                "customer_package__package"
            )
        ],
        "tickets": tickets,
    }


def _customer_record(tenant: Tenant, cpf: str) -> dict | None:
    """The customer record of a CPF with its packages, their sessions and every movement."""
    customer = Customer.objects.for_tenant(tenant).filter(cpf=cpf).first()
    if customer is None:
        return None
    packages = []
    for sold in CustomerPackage.objects.filter(customer=customer).select_related("package"):
        packages.append(
            {
                "package": sold.package.name,
                "kind": sold.package.kind,
                "price": sold.price,
                "valid_from": sold.valid_from,
                "valid_until": sold.valid_until,
                "sessions": [
                    {"service": c.service.name, "bought": c.granted, "left": c.balance}
                    for c in sold.credits.select_related("service")
                ],
                "movements": [
                    {
                        "at": e.created_at,
                        "service": e.credit.service.name,
                        "kind": e.kind,
                        "change": e.change,
                        "left_after": e.balance_after,
                        "reason": e.reason,
                    }
                    for e in CreditEntry.objects.filter(credit__customer_package=sold)
                    .select_related("credit__service")
                    .order_by("created_at", "id")
                ],
            }
        )
    # What a health form keeps: never an answer (none is stored), only its outcome.
    waivers = [
        {
            "service": w.version.questionnaire.service.name,
            "questionnaire_version": w.version.number,
            "signed_as": w.signed_name,
            "signed_at": w.signed_at,
            "outcome": w.outcome,
            "valid_until": w.valid_until,
            "cleared_at": w.cleared_at,
            "clear_reason": w.clear_reason,
        }
        for w in customer.waivers.select_related("version__questionnaire__service")
    ]
    return {
        "name": customer.name,
        "cpf": customer.cpf,
        "phone": customer.phone,
        "email": customer.email,
        "consent_version": customer.consent_version,
        "consent_at": customer.consent_at,
        "created_at": customer.created_at,
        "last_visit": customer.last_seen_at,
        "packages": packages,
        "health_waivers": waivers,
    }


def live_sessions(tenant: Tenant, cpf: str) -> int:
    """Sessions left in the live packages of a CPF's customer: erasing them needs a yes."""
    customer = Customer.objects.for_tenant(tenant).filter(cpf=cpf).first()
    return sum(b.left for b in credits.balances(customer))


def erase_customer(
    tenant: Tenant, cpf: str, *, user=None, request=None, close_packages: bool = False
) -> int:
    """Anonymise every ticket of the tenant with this CPF, and the history rows that had it,
    and delete the customer record. Its packages stay as sales without a customer; sessions
    left in a live package are closed (ledger rows say why), which needs `close_packages`:
    without it, DomainError and nothing is erased."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(tenant=tenant, cpf=cpf).first()
        closed = 0
        if customer is not None:
            if live_sessions(tenant, cpf) and not close_packages:
                raise DomainError(
                    _("This customer has package sessions left. Confirm that erasing closes them.")
                )
            closed = credits.forfeit_all(
                customer, user=user, reason=_("customer's data erased (LGPD)")
            )
            # The CPFs they named: their closed packages serve no one now.
            PackageSharing.objects.filter(customer_package__customer=customer).delete()
            customer.delete()
        # Named on someone else's package: the CPF goes, the owner's package stays.
        PackageSharing.objects.filter(tenant=tenant, cpf=cpf).delete()
        ids = set(_tickets_of(tenant, cpf).values_list("pk", flat=True))
        # A ticket whose CPF was corrected later still has the old one in its history.
        ids |= set(
            Ticket.history.model.objects.filter(tenant=tenant, customer_cpf=cpf).values_list(
                "id", flat=True
            )
        )
        count = anonymise_tickets(sorted(ids))
        record(
            AuditAction.DATA_ERASED,
            tenant=tenant,
            user=user,
            entity="tickets.ticket",
            data={
                "cpf": mask_cpf(cpf),
                "tickets": count,
                "customer_record": customer is not None,
                "package_sessions_closed": closed,
            },
            request=request,
        )
    return count
