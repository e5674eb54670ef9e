"""Package sessions: given when a package is paid for, taken by a service line, given back,
adjusted by a manager, renewed (memberships).

The balance of a customer's sessions of one service is a column (PackageCredit.balance)
guarded by a CHECK >= 0; every movement also writes one ledger row (CreditEntry) with the
balance after it, who and why. A session is taken with one conditional UPDATE whose row
count is the answer (see PackageCredit), so two kiosks never spend the last one twice.
Giving back is `tickets.models.give_session_back`, called by `change_line_status` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from tenants import audit
from tenants.access import has_role
from tenants.br import mask_cpf, normalize_cpf
from tenants.errors import DomainError
from tenants.models import AuditAction, Role, Tenant
from tickets.models import (
    CreditEntry,
    CreditKind,
    CustomerPackage,
    Package,
    PackageCredit,
    PackageKind,
    PackageSharing,
    Service,
    Ticket,
    TicketLine,
)


class CreditError(DomainError):
    """A package operation refused, with a sentence for the screen."""


def _user(user):
    return user if user is not None and user.is_authenticated else None


def _entry(credit_id: int, tenant_id: int, kind: str, change: int, **extra) -> CreditEntry:
    balance = PackageCredit.objects.filter(pk=credit_id).values_list("balance", flat=True)[0]
    return CreditEntry.objects.create(
        tenant_id=tenant_id,
        credit_id=credit_id,
        kind=kind,
        change=change,
        balance_after=balance,
        **extra,
    )


# --- what a customer has ------------------------------------------------------------------------


@dataclass
class Balance:
    service: Service
    # Sessions that may be taken today: the count left, or for an unlimited plan what its
    # daily limit still allows today.
    left: int
    valid_until: datetime
    # The daily limit of an unlimited plan (None: sessions counted).
    per_day: int | None = None


def today(tenant_id: int):
    """The studio's date: a daily limit counts the studio's days, not the server's."""
    return timezone.localdate(timezone=Tenant.objects.get(pk=tenant_id).tzinfo)


def usable_packages(customer: Customer, now: datetime | None = None) -> QuerySet:
    """The live packages whose sessions this customer may take: their own, and the shareable
    ones whose owner named their CPF."""
    named = PackageSharing.objects.filter(
        tenant_id=customer.tenant_id,
        cpf=customer.cpf,
        customer_package__package__shareable=True,
    ).values("customer_package")
    return CustomerPackage.objects.filter(Q(customer=customer) | Q(pk__in=named)).live(now)


def balances(customer: Customer | None, now: datetime | None = None) -> list[Balance]:
    """Sessions that may be taken today per service in the customer's live packages, with
    the earliest end; a service of an unlimited plan says its daily limit."""
    if customer is None:
        return []
    day = today(customer.tenant_id)
    found: dict[int, Balance] = {}
    for credit in (
        PackageCredit.objects.filter(customer_package__in=usable_packages(customer, now))
        .select_related("customer_package", "service")
        .order_by("customer_package__valid_until", "pk")
    ):
        left = credit.left_on(day)
        if not left and credit.balance is not None:
            continue  # used up; an unlimited plan at its limit today still shows
        end = credit.customer_package.valid_until
        if credit.service_id not in found:
            found[credit.service_id] = Balance(credit.service, 0, end)
        balance = found[credit.service_id]
        balance.left += left
        balance.valid_until = min(balance.valid_until, end)
        if credit.balance is None:
            balance.per_day = credit.per_day
    return sorted(found.values(), key=lambda b: (b.service.display_order, b.service.name))


def sessions_left(customer: Customer | None, service_id: int) -> int:
    return next((b.left for b in balances(customer) if b.service.pk == service_id), 0)


def packages_on_sale(tenant: Tenant, service_id: int) -> list[Package]:
    """The tenant's packages on sale that cover a service, cheapest first."""
    return list(
        Package.objects.sellable()
        .for_tenant(tenant)
        .filter(items__service_id=service_id)
        .prefetch_related("items__service")
        .order_by("price", "name")
    )


# --- taking and giving --------------------------------------------------------------------------


def spend(line: TicketLine, customer: Customer, *, user=None) -> PackageCredit:
    """Take one session of the line's service from the customer's live packages, the one
    that ends first, for `line`. Raises ValidationError (on "services", for the kiosk) when
    there is none left. Call inside the sale's transaction."""
    now = timezone.now()
    day = today(line.tenant_id)
    candidates = (
        PackageCredit.objects.filter(
            Q(balance__gt=0) | Q(balance__isnull=True),
            customer_package__in=usable_packages(customer, now),
            service_id=line.service_id,
        )
        .order_by("customer_package__valid_until", "pk")
        .values_list("pk", flat=True)
    )
    for credit_id in list(candidates):
        # The guard: of two kiosks taking the last session, or the last of the day, one
        # UPDATE finds nothing left. PostgreSQL re-checks this WHERE on the row as the first
        # writer left it; an unlimited plan's null balance stays null.
        if (
            PackageCredit.objects.filter(pk=credit_id)
            .filter(Q(balance__gte=1) | Q(balance__isnull=True))
            .filter(
                Q(per_day__isnull=True)
                | ~Q(used_on=day)
                | Q(used_on__isnull=True)
                | Q(used_that_day__lt=F("per_day"))
            )
            .update(
                balance=F("balance") - 1,
                used_that_day=Case(
                    When(used_on=day, then=F("used_that_day") + 1), default=Value(1)
                ),
                used_on=day,
            )
        ):
            _entry(
                credit_id,
                line.tenant_id,
                CreditKind.SPENT,
                -1,
                line=line,
                user=_user(user),
                reason=line.ticket.number,
            )
            TicketLine.objects.filter(pk=line.pk).update(credit_id=credit_id, covered=True)
            line.credit_id, line.covered = credit_id, True
            return PackageCredit.objects.get(pk=credit_id)
    raise ValidationError(
        {
            "services": [
                _("No package session of “%(service)s” is left.") % {"service": line.service}
            ]
        }
    )


def grant(
    package: Package,
    customer: Customer,
    *,
    price: Decimal,
    ticket: Ticket | None = None,
    user=None,
    starts: datetime | None = None,
) -> CustomerPackage:
    """A customer's package with the package's sessions, valid from `starts` (now) for its
    days, and a ledger row per service. Call inside the transaction that paid for it."""
    start = starts or timezone.now()
    sold = CustomerPackage.objects.create(
        tenant_id=package.tenant_id,
        customer=customer,
        package=package,
        price=price,
        valid_from=start,
        valid_until=start + timedelta(days=package.validity_days),
        ticket=ticket,
        sold_by=_user(user),
    )
    for item in package.items.all():
        credit = PackageCredit.objects.create(
            tenant_id=package.tenant_id,
            customer_package=sold,
            service_id=item.service_id,
            granted=item.sessions,
            balance=item.sessions,
            per_day=item.per_day,
        )
        _entry(
            credit.pk,
            package.tenant_id,
            CreditKind.GRANTED,
            item.sessions or 0,
            user=_user(user),
            reason=ticket.number if ticket else _("counter sale"),
        )
    return sold


def grant_paid(ticket: Ticket) -> None:
    """The packages bought on a ticket become the customer's once it is paid, and the lines
    that were to use one of them take their session now. Called by `mark_paid`, in the
    payment's transaction, holding the ticket's lock; a package already given is skipped."""
    if ticket.customer_id is None:
        return  # no CPF, no package sold (create_ticket): spares most sales a query
    bought = list(ticket.packages.filter(granted__isnull=True).select_related("package"))
    if not bought:
        return
    customer = Customer.objects.get(pk=ticket.customer_id)
    for item in bought:
        item.granted = grant(item.package, customer, price=item.price, ticket=ticket)
        item.save(update_fields=["granted"])
    for line in ticket.lines.filter(covered=True, credit__isnull=True).select_related("service"):
        line.ticket = ticket
        spend(line, customer)


# --- managers -----------------------------------------------------------------------------------


def _require_manager(user, tenant: Tenant) -> None:
    if user is None or not has_role(user, tenant, Role.MANAGER):
        raise CreditError(_("Only a manager can do this."))


def adjust(tenant: Tenant, credit_id: int, change: int, *, user, reason: str) -> PackageCredit:
    """A manager adds or removes sessions (a courtesy, a correction), with the reason."""
    _require_manager(user, tenant)
    reason = (reason or "").strip()
    if not reason:
        raise CreditError(_("Say why (the reason is required)."))
    if not change:
        raise CreditError(_("Type how many sessions to add (or remove, with a minus sign)."))
    with transaction.atomic():
        credit = (
            PackageCredit.objects.select_for_update().filter(tenant=tenant, pk=credit_id).first()
        )
        if credit is None:
            raise CreditError(_("Package not found."))
        if credit.balance is None:
            raise CreditError(_("An unlimited plan has no sessions to add or remove."))
        if credit.balance + change < 0:
            raise CreditError(
                _("Only %(n)s sessions are left; that many cannot be removed.")
                % {"n": credit.balance}
            )
        PackageCredit.objects.filter(pk=credit.pk).update(balance=F("balance") + change)
        _entry(credit.pk, tenant.pk, CreditKind.ADJUSTED, change, user=user, reason=reason[:200])
        credit.refresh_from_db()
        audit.record(
            AuditAction.CREDITS_ADJUSTED,
            tenant=tenant,
            user=user,
            entity=credit.customer_package,
            data={
                "service": credit.service.name,
                "change": change,
                "balance": credit.balance,
                "reason": reason,
            },
        )
    return credit


def sell_at_counter(
    tenant: Tenant, customer: Customer, package: Package, *, user, price: Decimal | None = None
) -> CustomerPackage:
    """A package paid at the front desk (outside Totem's payments): the sale, audited."""
    _require_manager(user, tenant)
    if customer.tenant_id != tenant.pk or package.tenant_id != tenant.pk:
        raise CreditError(_("Package not found."))
    with transaction.atomic():
        sold = grant(package, customer, price=package.price if price is None else price, user=user)
        audit.record(
            AuditAction.PACKAGE_SOLD,
            tenant=tenant,
            user=user,
            entity=sold,
            data={"package": package.name, "price": sold.price},
        )
    return sold


def renew(tenant: Tenant, customer_package_id: int, *, user) -> CustomerPackage:
    """A membership's next period, recorded by a manager: the package's allowance again,
    from the end of the current period (or now, when it has ended)."""
    _require_manager(user, tenant)
    with transaction.atomic():
        current = (
            CustomerPackage.objects.select_for_update(of=("self",))
            .filter(tenant=tenant, pk=customer_package_id)
            .select_related("package", "customer")
            .first()
        )
        if current is None or current.customer is None:
            raise CreditError(_("Package not found."))
        if current.package.kind != PackageKind.MEMBERSHIP:
            raise CreditError(_("Only a membership is renewed; sell a new package instead."))
        latest = (
            CustomerPackage.objects.filter(customer=current.customer, package=current.package)
            .order_by("-valid_until")
            .first()
        )
        start = max(timezone.now(), latest.valid_until)
        renewed = grant(
            current.package, current.customer, price=current.package.price, user=user, starts=start
        )
        audit.record(
            AuditAction.PACKAGE_RENEWED,
            tenant=tenant,
            user=user,
            entity=renewed,
            data={"package": current.package.name, "from": start, "until": renewed.valid_until},
        )
    return renewed


def share(tenant: Tenant, customer_package_id: int, cpf: str, *, user) -> PackageSharing:
    """A manager records another CPF the owner named for a shareable package (audited)."""
    _require_manager(user, tenant)
    try:
        cpf = normalize_cpf(cpf)
    except ValidationError as invalid:
        raise CreditError(invalid.messages[0]) from invalid
    with transaction.atomic():
        sold = (
            CustomerPackage.objects.select_for_update(of=("self",))
            .filter(tenant=tenant, pk=customer_package_id)
            .select_related("package", "customer")
            .first()
        )
        if sold is None:
            raise CreditError(_("Package not found."))
        if not sold.package.shareable:
            raise CreditError(_("This package is not shareable."))
        if sold.customer is not None and sold.customer.cpf == cpf:
            raise CreditError(_("That is the owner's own CPF."))
        shared, _created = PackageSharing.objects.get_or_create(
            tenant=tenant, customer_package=sold, cpf=cpf, defaults={"added_by": user}
        )
        audit.record(
            AuditAction.PACKAGE_SHARED,
            tenant=tenant,
            user=user,
            entity=sold,
            data={"package": sold.package.name, "cpf": mask_cpf(cpf)},
        )
    return shared


def forfeit_all(customer: Customer, *, user=None, reason: str) -> int:
    """Close every session left of a customer (erasure): ledger rows say so. Returns how many."""
    return _close(PackageCredit.objects.filter(customer_package__customer=customer), user, reason)


def revoke_sold_on(ticket: Ticket, *, user=None, reason: str) -> int:
    """Close the sessions left of the packages bought on a ticket whose money went back (a
    refund). Call after its lines were cancelled, so their sessions came back first and are
    closed with the rest. Returns how many were closed."""
    sold = ticket.packages.filter(granted__isnull=False).values("granted")
    return _close(PackageCredit.objects.filter(customer_package__in=sold), user, reason)


def _close(credits_: QuerySet[PackageCredit], user, reason: str) -> int:
    total = 0
    # An unlimited plan is closed too: its balance becomes a count of 0.
    open_ = Q(balance__gt=0) | Q(balance__isnull=True)
    for credit in credits_.select_for_update().filter(open_).order_by("pk"):
        PackageCredit.objects.filter(pk=credit.pk).update(balance=0)
        _entry(
            credit.pk,
            credit.tenant_id,
            CreditKind.FORFEITED,
            -(credit.balance or 0),
            user=_user(user),
            reason=reason[:200],
        )
        total += credit.balance or 0
    return total
