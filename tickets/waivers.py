"""Health waivers: a service's questionnaire, answered and signed at the kiosk.

LGPD art. 11 minimisation: `sign` receives the answers, decides the outcome and forgets them.
What is kept is the questionnaire version, the time, the name signed and the outcome (valid
/ needs staff); nothing downstream (the cart in the session, history, audit, logs) ever sees
an answer. A waiver is valid for the customer (by CPF) until it expires or the service's
questions change (a new version). A walk-in without CPF answers every time: their waiver
serves only the ticket it was signed for.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from tenants import audit
from tenants.compiled import CompiledRead
from tenants.errors import DomainError
from tenants.models import AuditAction, Tenant
from tickets.models import (
    Questionnaire,
    QuestionnaireVersion,
    Service,
    Ticket,
    Waiver,
    WaiverOutcome,
)


class WaiverError(DomainError):
    """A waiver operation refused, with a sentence for the screen."""


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it has fewer days)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# --- the manager's questionnaire ---------------------------------------------------------------


def publish(questionnaire: Questionnaire, *, user=None) -> QuestionnaireVersion | None:
    """Make the questions as they are now the current version, when they differ from it.

    Called after the questions were saved (admin). Changing only the validity or the active
    flag publishes nothing: the signatures stay valid. None when there are no questions.
    """
    questions = [{"text": q.text, "blocks_on": q.blocks_on} for q in questionnaire.questions.all()]
    if not questions:
        return None
    current = current_version(questionnaire)
    if current is not None and current.questions == questions:
        return current
    number = current.number + 1 if current else 1
    try:
        with transaction.atomic():
            return QuestionnaireVersion.objects.create(
                questionnaire=questionnaire,
                number=number,
                questions=questions,
                created_by=user if user is not None and user.is_authenticated else None,
            )
    except IntegrityError:
        # Another manager published this number a moment ago: theirs is the current one.
        return current_version(questionnaire)


def current_version(questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    return questionnaire.versions.order_by("-number").first()


def asked_versions(tenant: Tenant, service_ids: Iterable[int]) -> dict[int, QuestionnaireVersion]:
    """Service id → the current version of its questionnaire, for the services that ask one.
    The version's questionnaire is not read with it (`questionnaire` is read on first use)."""
    wanted = set(service_ids)
    return {v.asked_for: v for v in _current_versions(tenant.pk) if v.asked_for in wanted}


@CompiledRead
def _current_versions(tenant_id: int) -> QuerySet[QuestionnaireVersion]:
    # Every kiosk identification and every sale asks (`to_sign`, `check_sale`): the statement
    # is built once per process. One row per active questionnaire of the tenant.
    newer = QuestionnaireVersion.objects.filter(
        questionnaire=OuterRef("questionnaire"), number__gt=OuterRef("number")
    )
    return (
        QuestionnaireVersion.objects.filter(
            questionnaire__tenant_id=tenant_id, questionnaire__is_active=True
        )
        .exclude(Exists(newer))
        .annotate(asked_for=F("questionnaire__service_id"))
        .order_by("questionnaire_id")
    )


# --- the kiosk -----------------------------------------------------------------------------------


def _valid(now: datetime | None = None) -> Q:
    return Q(outcome=WaiverOutcome.VALID, valid_until__gt=now or timezone.now())


def to_sign(
    tenant: Tenant, service_ids: Sequence[int], *, cpf: str, signed: Iterable[int] = ()
) -> list[QuestionnaireVersion]:
    """The versions still to answer before these services may be sold, in the services'
    order: those with no valid waiver of their current version on file for the customer with
    this CPF, nor among the waivers `signed` in this visit."""
    versions = asked_versions(tenant, service_ids)
    if not versions:
        return []
    valid = Waiver.objects.filter(_valid(), tenant=tenant, version__in=versions.values())
    on_file = Q(pk__in=list(signed))
    if cpf:
        on_file |= Q(customer__cpf=cpf)
    covered = set(valid.filter(on_file).values_list("version_id", flat=True))
    return [versions[pk] for pk in service_ids if pk in versions and versions[pk].pk not in covered]


def blocks(version: QuestionnaireVersion, answers: Sequence[bool]) -> bool:
    """Whether an answer is the one its question blocks on."""
    return any(a == q["blocks_on"] for q, a in zip(version.questions, answers, strict=True))


def sign(
    tenant: Tenant,
    version: QuestionnaireVersion,
    answers: Sequence[bool],
    *,
    signed_name: str,
    cpf: str = "",
) -> Waiver:
    """Record a signature of `version` with only its outcome: the answers are looked at here
    and nowhere else. Needs one answer per question. The customer is linked now when known
    by CPF, else by `attach_signed` when the ticket creates the record."""
    if len(answers) != len(version.questions):
        raise WaiverError(_("Answer every question."))
    signed_name = signed_name.strip()
    if len(signed_name) < 2:
        raise WaiverError(_("Type your name to sign."))
    now = timezone.now()
    outcome = WaiverOutcome.NEEDS_STAFF if blocks(version, answers) else WaiverOutcome.VALID
    customer = Customer.objects.for_tenant(tenant).filter(cpf=cpf).first() if cpf else None
    return Waiver.objects.create(
        tenant=tenant,
        version=version,
        customer=customer,
        signed_name=signed_name[:80],
        signed_at=now,
        outcome=outcome,
        valid_until=add_months(now, version.questionnaire.validity_months),
    )


def check_sale(
    tenant: Tenant, services: Sequence[Service], *, cpf: str, signed: Iterable[int]
) -> None:
    """Refuse the sale of a service that asks a questionnaire with no valid waiver (the rule
    lives here, for every seller, not only in the kiosk's step). Raises ValidationError."""
    missing = to_sign(tenant, [s.pk for s in services], cpf=cpf, signed=signed)
    if missing:
        names = ", ".join(v.questionnaire.service.name for v in missing)
        needed = _("“%(service)s” needs the health form signed first.") % {"service": names}
        raise ValidationError({"services": [needed]})


def attach_signed(ticket: Ticket, signed: Iterable[int]) -> None:
    """Link the waivers signed in this visit to the ticket, and to its customer (created with
    the ticket on a first visit). Call inside the ticket's transaction."""
    ids = list(signed)
    if not ids:
        return
    unlinked = Waiver.objects.filter(tenant_id=ticket.tenant_id, pk__in=ids, ticket__isnull=True)
    unlinked.update(ticket=ticket)
    if ticket.customer_id:
        Waiver.objects.filter(pk__in=ids, customer__isnull=True).update(
            customer_id=ticket.customer_id
        )


# --- the team ----------------------------------------------------------------------------------


def pending_for(ticket: Ticket) -> list[Waiver]:
    """The waivers of this ticket that wait for someone of the team."""
    return list(
        ticket.waivers.filter(outcome=WaiverOutcome.NEEDS_STAFF).select_related(
            "version__questionnaire__service"
        )
    )


def clear(tenant: Tenant, ticket_id: int, *, user, reason: str) -> list[Waiver]:
    """After talking to the customer, an operator clears the ticket's waivers that need staff:
    each becomes valid from now for its questionnaire's months. Audited with the reason."""
    reason = (reason or "").strip()
    if not reason:
        raise WaiverError(_("Say why (the reason is required)."))
    now = timezone.now()
    with transaction.atomic():
        pending = list(
            Waiver.objects.select_for_update(of=("self",))
            .filter(tenant=tenant, ticket_id=ticket_id, outcome=WaiverOutcome.NEEDS_STAFF)
            .select_related("version__questionnaire__service")
            .order_by("pk")
        )
        if not pending:
            raise WaiverError(_("No health form of this ticket waits for the team."))
        for waiver in pending:
            waiver.outcome = WaiverOutcome.VALID
            waiver.valid_until = add_months(now, waiver.version.questionnaire.validity_months)
            waiver.cleared_at, waiver.cleared_by = now, user
            waiver.clear_reason = reason[:200]
            waiver.save(
                update_fields=[
                    "outcome",
                    "valid_until",
                    "cleared_at",
                    "cleared_by",
                    "clear_reason",
                ]
            )
            audit.record(
                AuditAction.WAIVER_CLEARED,
                tenant=tenant,
                user=user,
                entity=waiver,
                data={
                    "service": waiver.version.questionnaire.service.name,
                    "version": waiver.version.number,
                    "reason": reason,
                },
            )
    return pending
