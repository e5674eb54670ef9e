"""Feedback after the visit: a 0–10 per service on the ticket's page, once per ticket, read by
the dashboard as NPS and averages, announced as `feedback.received`."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from messaging import feedback
from messaging.models import Feedback, FeedbackScore
from ops import retention
from tenants.errors import DomainError
from tenants.models import WebhookEndpoint, WebhookOutbox
from tests.conftest import make_device, queued_ticket
from tickets import queue
from tickets.models import Ticket


def served(tenant, services, operator=None):
    """A ticket whose every service was called, run and completed."""
    ticket = queued_ticket(tenant, services)
    for service in services:
        device = make_device(tenant, f"Cabine {ticket.pk}-{service.pk}", [service])
        line = queue.call_next(service, device, user=operator)
        queue.start(tenant, line.id)
        queue.complete(tenant, line.id)
    ticket.refresh_from_db()
    return ticket


def scores_of(ticket, *values):
    return dict(zip([line.pk for line in feedback.lines_to_score(ticket)], values, strict=True))


def page(client, ticket):
    return client.get(reverse("ticket_status", args=[ticket.tenant.slug, ticket.token]))


def test_the_ticket_page_asks_for_a_score_per_service_only_after_the_visit(
    client, tenant, cryo, boots
):
    ticket = served(tenant, [cryo, boots])
    waiting = queued_ticket(tenant, [cryo])
    assert 'data-testid="feedback"' not in page(client, waiting).content.decode()
    text = page(client, ticket).content.decode()
    assert "De 0 a 10, que nota você dá para Crioterapia?" in text
    assert "Bota de compressão" in text
    assert text.count('type="radio"') == 22


def test_a_score_is_recorded_once_and_announced_to_the_tenants_webhook(client, tenant, cryo, boots):
    WebhookEndpoint.objects.create(tenant=tenant, target_url="https://example.com/h", secret="s")
    ticket = served(tenant, [cryo, boots])
    cryo_line, boots_line = feedback.lines_to_score(ticket)
    url = reverse("feedback", args=[tenant.slug, ticket.token])
    answer = {f"score_{cryo_line.pk}": "10", f"score_{boots_line.pk}": "6", "comment": " Ótimo! "}
    assert client.post(url, answer).status_code == 302
    again = client.post(url, {**answer, f"score_{cryo_line.pk}": "0"}, follow=True)
    assert "Sua avaliação já foi enviada. Obrigado!" in again.content.decode()
    assert "Obrigado pela sua avaliação!" in again.content.decode()
    recorded = Feedback.objects.get(ticket=ticket)
    assert recorded.comment == "Ótimo!"
    assert sorted(FeedbackScore.objects.values_list("score", flat=True)) == [6, 10]
    event = WebhookOutbox.objects.get(event_type="feedback.received")
    assert event.payload["scores"] == [
        {"service": "Crioterapia", "service_id": cryo.pk, "score": 10},
        {"service": "Bota de compressão", "service_id": boots.pk, "score": 6},
    ]


def test_a_score_outside_0_to_10_or_a_missing_service_is_refused(tenant, cryo, boots):
    ticket = served(tenant, [cryo, boots])
    for scores in (scores_of(ticket, 11, 5), dict(list(scores_of(ticket, 5, 5).items())[:1])):
        with pytest.raises(DomainError, match="0 to 10|0 a 10"):
            feedback.record(ticket, scores)
    assert not Feedback.objects.exists()


def test_an_open_ticket_cannot_be_rated(tenant, cryo):
    ticket = queued_ticket(tenant, [cryo])
    with pytest.raises(DomainError):
        feedback.record(ticket, {})


def test_another_tenant_cannot_rate_a_ticket_by_its_token(client, tenant, other_tenant, cryo):
    ticket = served(tenant, [cryo])
    (line,) = feedback.lines_to_score(ticket)
    url = reverse("feedback", args=[other_tenant.slug, ticket.token])
    assert client.post(url, {f"score_{line.pk}": "9"}).status_code == 404
    assert not Feedback.objects.exists()


def test_the_dashboard_shows_nps_and_averages_per_service_device_and_operator(
    client, tenant, cryo, boots, bob, alice
):
    for value in (10, 9, 3):
        ticket = served(tenant, [cryo], operator=alice)
        feedback.record(ticket, scores_of(ticket, value), comment="Equipe atenciosa")
    summary = feedback.summary(tenant, since=timezone.now() - timezone.timedelta(days=1))
    # Two promoters, one detractor of three: (2 - 1) / 3 = 33 points.
    assert (summary.answers, summary.nps, round(summary.average, 2)) == (3, 33, 7.33)
    assert [(r.name, r.answers) for r in summary.by_service] == [("Crioterapia", 3)]
    assert [r.name for r in summary.by_operator] == [alice.username]
    assert len(summary.by_device) == 3
    assert [(r.answers, r.nps) for r in summary.by_week] == [(3, 33)]
    client.force_login(bob)
    text = client.get(reverse("ops_dashboard", args=[tenant.slug])).content.decode()
    assert "Avaliações dos clientes (30 dias)" in text and "NPS: 33" in text
    assert "Equipe atenciosa" in text


def test_erasing_a_customer_erases_the_comment_and_keeps_the_scores(tenant, cryo):
    ticket = served(tenant, [cryo])
    feedback.record(ticket, scores_of(ticket, 8), comment="Sou a Maria, 11 98765-4321")
    retention.anonymise_tickets([ticket.pk])
    recorded = Feedback.objects.get(ticket=ticket)
    assert recorded.comment == "" and recorded.scores.get().score == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_taps_at_once_record_one_answer(tenant, cryo):
    ticket = served(tenant, [cryo])
    scores = scores_of(ticket, 9)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def tap():
        try:
            barrier.wait()
            feedback.record(ticket, scores)
            outcomes.append("recorded")
        except DomainError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["recorded"] + ["refused"] * 3
    assert Feedback.objects.count() == 1


def test_the_lgpd_export_lists_the_rating(tenant, cryo):
    ticket = served(tenant, [cryo])
    Ticket.objects.filter(pk=ticket.pk).update(customer_cpf="52998224725")
    feedback.record(ticket, scores_of(ticket, 7), comment="Bom")
    (item,) = retention.export_customer(tenant, "52998224725")["tickets"]
    assert item["feedback"] == [{"comment": "Bom", "scores": [7]}]
    assert item["whatsapp"] == []
