"""The customer's score after the visit: recorded once per ticket, read by the dashboard.

Asked on the ticket's page once the ticket is completed (and linked from the WhatsApp
feedback message): 0–10 for each service the customer received, and an optional comment.
NPS as Bain defines it: the share of 9–10 scores minus the share of 0–6 scores, in points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils.translation import gettext as _

from messaging.models import Feedback, FeedbackScore
from tenants import webhooks
from tenants.errors import DomainError
from tenants.models import Tenant, WebhookEvent
from tickets.models import LineStatus, Ticket, TicketLine, TicketStatus

COMMENT_LIMIT = 500
# The scale the page offers, and the only scores recorded.
SCALE = range(11)


def lines_to_score(ticket: Ticket) -> list[TicketLine]:
    """The services the customer received: the completed lines, in the ticket's order."""
    return list(
        ticket.lines.filter(status=LineStatus.COMPLETED)
        .select_related("service")
        .order_by("position", "id")
    )


def asks_feedback(ticket: Ticket) -> bool:
    """Whether the ticket's page asks for a score now."""
    return (
        ticket.status == TicketStatus.COMPLETED
        and not Feedback.objects.filter(ticket=ticket).exists()
        and ticket.lines.filter(status=LineStatus.COMPLETED).exists()
    )


def record(ticket: Ticket, scores: dict[int, int], comment: str = "") -> Feedback:
    """Record the answer (a score for every completed line) and announce `feedback.received`.

    Locks the ticket: two taps of "send" record one answer and refuse the other with a
    sentence. Raises DomainError.
    """
    comment = comment.strip()[:COMMENT_LIMIT]
    try:
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
            if ticket.status != TicketStatus.COMPLETED:
                raise DomainError(_("You can rate the service once your visit is over."))
            if Feedback.objects.filter(ticket=ticket).exists():
                raise DomainError(_("Your rating was already sent. Thank you!"))
            lines = lines_to_score(ticket)
            if not lines or set(scores) != {line.pk for line in lines}:
                raise DomainError(_("Give a score from 0 to 10 to each service."))
            if any(value not in SCALE for value in scores.values()):
                raise DomainError(_("Give a score from 0 to 10 to each service."))
            feedback = Feedback.objects.create(
                tenant_id=ticket.tenant_id, ticket=ticket, comment=comment
            )
            FeedbackScore.objects.bulk_create(
                FeedbackScore(feedback=feedback, line=line, score=scores[line.pk]) for line in lines
            )
            webhooks.enqueue(
                ticket.tenant_id,
                WebhookEvent.FEEDBACK_RECEIVED,
                lambda: {
                    "ticket": ticket.number,
                    "ticket_id": ticket.pk,
                    "comment": comment,
                    "scores": [
                        {
                            "service": line.service.name,
                            "service_id": line.service_id,
                            "score": scores[line.pk],
                        }
                        for line in lines
                    ],
                },
            )
    except IntegrityError:
        # Another request recorded it between our check and our insert.
        raise DomainError(_("Your rating was already sent. Thank you!")) from None
    return feedback


# --- the dashboard's figures ---------------------------------------------------------------


def nps(promoters: int, detractors: int, total: int) -> int | None:
    return round(100 * (promoters - detractors) / total) if total else None


@dataclass
class Row:
    name: str
    answers: int
    average: float | None
    nps: int | None


@dataclass
class Summary:
    answers: int = 0
    average: float | None = None
    nps: int | None = None
    by_service: list[Row] = field(default_factory=list)
    by_device: list[Row] = field(default_factory=list)
    by_operator: list[Row] = field(default_factory=list)
    by_week: list[Row] = field(default_factory=list)
    comments: list[Feedback] = field(default_factory=list)


def _figures() -> dict:
    """What every row counts: answers, their average, promoters (9–10), detractors (0–6)."""
    return {
        "answers": Count("id"),
        "average": Avg("score"),
        "promoters": Count("id", filter=Q(score__gte=9)),
        "detractors": Count("id", filter=Q(score__lte=6)),
    }


def _row(name: str, figures: dict) -> Row:
    return Row(
        name=name,
        answers=figures["answers"],
        average=figures["average"],
        nps=nps(figures["promoters"], figures["detractors"], figures["answers"]),
    )


def _grouped(scores: QuerySet, key: str, label: str) -> list[Row]:
    rows = scores.exclude(**{f"{key}__isnull": True}).values(key, label)
    return [_row(r[label] or "—", r) for r in rows.annotate(**_figures()).order_by(label)]


def _weekly(scores: QuerySet, tenant: Tenant) -> list[Row]:
    """The same figures week by week (weeks start on Monday in the tenant's time zone)."""
    weeks = scores.annotate(week=TruncWeek("feedback__created_at", tzinfo=tenant.tzinfo)).values(
        "week"
    )
    return [
        _row(r["week"].strftime("%d/%m"), r) for r in weeks.annotate(**_figures()).order_by("week")
    ]


def summary(tenant: Tenant, since: datetime, comments: int = 10) -> Summary:
    """NPS and averages since `since`, per service, device, operator and week, and the
    latest comments."""
    scores = FeedbackScore.objects.filter(feedback__tenant=tenant, feedback__created_at__gte=since)
    totals = _row("", scores.aggregate(**_figures()))
    return Summary(
        answers=totals.answers,
        average=totals.average,
        nps=totals.nps,
        by_service=_grouped(scores, "line__service", "line__service__name"),
        by_device=_grouped(scores, "line__equipment", "line__equipment__name"),
        by_operator=_grouped(scores, "line__operator", "line__operator__username"),
        by_week=_weekly(scores, tenant),
        comments=list(
            Feedback.objects.filter(tenant=tenant, created_at__gte=since)
            .exclude(comment="")
            .select_related("ticket")
            .order_by("-created_at")[:comments]
        ),
    )
