"""WhatsApp notices: written when the queue calls for them, sent by the worker through the
Cloud API (a fake on 127.0.0.1 that enforces Meta's documented contract), retried, stopped
by the customer, verified when Meta calls back."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from messaging import inbound, notify, optin, outbox
from messaging.fake_graph import FakeGraph
from messaging.models import Message, MessageStatus, OptOutVia, Subscription, WhatsAppAccount
from ops import retention
from tests.conftest import make_device, queued_ticket

# The kiosk's fixtures and steps, shared rather than copied.
from tests.test_kiosk import (  # noqa: F401 — fixtures used by name
    buy,
    identify,
    kiosk_client,
    kiosk_device,
    machines,
    pix,
    url,
)
from tickets import queue
from tickets.printing import status_url

PHONE = "11987654321"
TO = "55" + PHONE


@pytest.fixture
def graph(settings):
    server = FakeGraph().start()
    settings.WHATSAPP_GRAPH_URL = server.url
    settings.WHATSAPP_TIMEOUT = 2.0
    yield server
    server.stop()


@pytest.fixture
def account(tenant, graph) -> WhatsAppAccount:
    return WhatsAppAccount.objects.create(
        tenant=tenant,
        enabled=True,
        phone_number_id=graph.phone_number_id,
        access_token=graph.token,
        app_secret=graph.app_secret,
        verify_token="verifica-123",
        notify_ahead=2,
    )


def opted_in(tenant, services, phone=PHONE):
    ticket = queued_ticket(tenant, services, phone=phone)
    assert optin.opt_in(ticket) is not None
    return ticket


def run_worker(now=None) -> int:
    """One round of the worker's WhatsApp loop (ops/worker.py `send_whatsapp`)."""
    notify.scan(now)
    return outbox.deliver_due(now)


def serve_next(service, device):
    line = queue.call_next(service, device)
    queue.start(service.tenant, line.id)
    queue.complete(service.tenant, line.id)


# --- what the queue sends ------------------------------------------------------------------


def test_a_moving_queue_sends_exactly_the_warning_the_call_and_the_feedback_link(
    tenant, cryo, account, graph
):
    device = make_device(tenant, "Crio 1", [cryo], location="Sala 2")
    for _ in range(3):
        queued_ticket(tenant, [cryo])
    ours = opted_in(tenant, [cryo])
    run_worker()
    assert graph.sent_templates() == []  # three ahead: more than the tenant's two

    serve_next(cryo, device)  # two ahead
    run_worker()
    serve_next(cryo, device)  # one ahead: the warning was once per service
    run_worker()
    serve_next(cryo, device)  # next: nothing until the call
    run_worker()
    line = queue.call_next(cryo, device)
    assert line.ticket_id == ours.pk
    run_worker()
    queue.start(tenant, line.id)
    run_worker()
    queue.complete(tenant, line.id)
    run_worker()
    run_worker()  # a second round sends nothing twice

    ours.refresh_from_db()
    assert graph.sent_templates() == [
        (TO, "totem_vez_chegando", ["2", "Crioterapia"]),
        (TO, "totem_sua_vez", ["Crioterapia", "Sala 2"]),
        (TO, "totem_avaliacao", [tenant.name, status_url(ours)]),
    ]
    sent = Message.objects.filter(subscription__ticket=ours)
    assert set(sent.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_a_tenant_without_whatsapp_sends_nothing_and_offers_no_opt_in(tenant, cryo, graph):
    ticket = queued_ticket(tenant, [cryo], phone=PHONE)
    assert optin.opt_in(ticket) is None
    WhatsAppAccount.objects.create(
        tenant=tenant, enabled=False, phone_number_id="123456", access_token="x"
    )
    assert optin.opt_in(ticket) is None
    run_worker()
    assert graph.requests == [] and not Message.objects.exists()


def test_a_warning_the_queue_overtook_is_dropped_not_sent_late(tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo])
    queued_ticket(tenant, [cryo])
    ours = opted_in(tenant, [cryo])
    notify.scan()  # "approaching" written (one ahead)…
    serve_next(cryo, device)
    queue.call_next(cryo, device)  # …and the customer is called before it went out
    run_worker()
    assert [t for _to, t, _p in graph.sent_templates()] == ["totem_sua_vez"]
    skipped = Message.objects.get(subscription__ticket=ours, kind="approaching")
    assert (skipped.status, skipped.last_error) == (MessageStatus.SKIPPED, "obsolete")


def test_the_message_log_keeps_the_template_name_and_no_text(tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo], location="Sala 2")
    ours = opted_in(tenant, [cryo])
    queue.call_next(cryo, device)
    run_worker()
    message = Message.objects.get(subscription__ticket=ours)
    stored = " ".join(str(getattr(message, f.attname)) for f in Message._meta.fields)
    assert message.template == "totem_sua_vez"
    assert "Sala 2" not in stored and "Crioterapia" not in stored and PHONE not in stored


# --- retries and refusals --------------------------------------------------------------------


def test_the_worker_retries_after_the_api_answers_500_then_sends_once(tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo])
    ours = opted_in(tenant, [cryo])
    queue.call_next(cryo, device)
    graph.fail_next(500)
    now = timezone.now()
    assert run_worker(now) == 1
    message = Message.objects.get(subscription__ticket=ours)
    assert (message.status, message.last_error) == (MessageStatus.PENDING, "131000")
    assert message.next_attempt_at == now + outbox.backoff(1)
    assert run_worker(now) == 0  # not due again before its back-off
    assert run_worker(now + timedelta(seconds=6)) == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT and message.attempts == 2
    assert len(graph.sent) == 1


def test_a_template_meta_has_not_approved_fails_at_once_without_retries(
    tenant, cryo, account, graph
):
    graph.templates[("totem_sua_vez", "pt_BR")]["status"] = "PENDING"
    device = make_device(tenant, "Crio 1", [cryo])
    ours = opted_in(tenant, [cryo])
    queue.call_next(cryo, device)
    run_worker()
    message = Message.objects.get(subscription__ticket=ours)
    assert (message.status, message.last_error) == (MessageStatus.FAILED, "132001")


def test_the_worker_gives_up_after_its_last_attempt(tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo])
    ours = opted_in(tenant, [cryo])
    queue.call_next(cryo, device)
    graph.fail_next(503, times=outbox.MAX_ATTEMPTS)
    now = timezone.now()
    for attempt in range(outbox.MAX_ATTEMPTS):
        run_worker(now + timedelta(minutes=10 * attempt))
    message = Message.objects.get(subscription__ticket=ours)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, outbox.MAX_ATTEMPTS)


# --- the fake holds our client to Meta's contract -------------------------------------------


def post(graph, body, token=None, number=None):
    return requests.post(
        f"{graph.url}/v23.0/{number or graph.phone_number_id}/messages",
        json=body,
        headers={"Authorization": f"Bearer {token or graph.token}"},
        timeout=5,
    )


def template(name="totem_sua_vez", parameters=("Crioterapia", "Sala 2"), **changes):
    from messaging.graph import body

    return {**body(TO, name, "pt_BR", list(parameters)), **changes}


def test_the_fake_refuses_what_the_cloud_api_refuses(graph):
    cases = [
        (post(graph, template(), token="wrong"), 401, 190),
        (post(graph, template(), number="999999"), 400, 100),
        (post(graph, template(messaging_product="sms")), 400, 100),
        (post(graph, template(to="+55 (11) 98765-4321")), 400, 100),
        (post(graph, {k: v for k, v in template().items() if k != "to"}), 400, 131008),
        (post(graph, template(name="nao_existe")), 404, 132001),
        (post(graph, template(parameters=("Crioterapia",))), 400, 132000),
        (post(graph, template(parameters=("Crio\nterapia", "Sala 2"))), 400, 132018),
        (
            post(
                graph,
                {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {"body": "oi"}},
            ),
            400,
            131047,
        ),
    ]
    for response, status, code in cases:
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (status, code), error
        assert {"message", "type", "code", "fbtrace_id"} <= set(error)
    assert graph.sent == []
    ok = post(graph, template())
    assert ok.status_code == 200
    assert ok.json()["messages"][0]["id"].startswith("wamid.")


def test_the_fake_holds_a_number_to_80_messages_a_second(graph):
    answers = [post(graph, template()) for _ in range(81)]
    assert [a.status_code for a in answers[:80]] == [200] * 80
    assert answers[80].status_code == 429
    assert answers[80].json()["error"]["code"] == 130429


# --- Meta's webhook -------------------------------------------------------------------------


def webhook_url(tenant) -> str:
    return reverse("whatsapp_webhook", args=[tenant.slug])


def test_meta_verifies_the_webhook_with_the_tenants_verify_token(client, tenant, account):
    url = webhook_url(tenant)
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verifica-123",
        "hub.challenge": "1158201444",
    }
    answer = client.get(url, query)
    assert (answer.status_code, answer.content) == (200, b"1158201444")
    assert client.get(url, {**query, "hub.verify_token": "outro"}).status_code == 403
    assert client.get(url, {**query, "hub.mode": "unsubscribe"}).status_code == 403


def signed_post(client, tenant, payload, secret):
    body = json.dumps(payload).encode()
    return client.post(
        webhook_url(tenant),
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": inbound.signature(secret, body)},
    )


def statuses(graph, *items):
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": graph.phone_number_id},
                            "statuses": [
                                {"id": wamid, "status": s, "timestamp": "1764600000"}
                                for wamid, s in items
                            ],
                        },
                    }
                ],
            }
        ],
    }


def test_a_status_webhook_must_carry_metas_signature(client, tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo])
    ours = opted_in(tenant, [cryo])
    queue.call_next(cryo, device)
    run_worker()
    message = Message.objects.get(subscription__ticket=ours)
    payload = statuses(graph, (message.wamid, "delivered"))
    assert signed_post(client, tenant, payload, "not-the-app-secret").status_code == 403
    unsigned = client.post(
        webhook_url(tenant), json.dumps(payload), content_type="application/json"
    )
    assert unsigned.status_code == 403
    message.refresh_from_db()
    assert message.delivery == ""
    # Signed: recorded; a late "delivered" after "read" leaves it read.
    assert (
        signed_post(
            client, tenant, statuses(graph, (message.wamid, "read")), graph.app_secret
        ).status_code
        == 200
    )
    assert signed_post(client, tenant, payload, graph.app_secret).status_code == 200
    message.refresh_from_db()
    assert message.delivery == "read"


@pytest.mark.django_db(transaction=True)
def test_the_fake_sends_signed_statuses_and_replies_the_app_accepts(
    live_server, tenant, cryo, settings
):
    graph = FakeGraph().start()
    try:
        settings.WHATSAPP_GRAPH_URL = graph.url
        graph.webhook_url = live_server.url + webhook_url(tenant)
        WhatsAppAccount.objects.create(
            tenant=tenant,
            enabled=True,
            phone_number_id=graph.phone_number_id,
            access_token=graph.token,
            app_secret=graph.app_secret,
            verify_token="v",
        )
        device = make_device(tenant, "Crio 1", [cryo])
        ours = opted_in(tenant, [cryo])
        queue.call_next(cryo, device)
        run_worker()
        message = Message.objects.get(subscription__ticket=ours)
        assert graph.send_status(message.wamid, "delivered").status_code == 200
        message.refresh_from_db()
        assert message.delivery == "delivered"
        # WhatsApp's id of an older Brazilian mobile lacks the ninth digit: still the customer.
        assert graph.send_reply("551187654321", "Parar").status_code == 200
        subscription = Subscription.objects.get(ticket=ours)
        assert subscription.opted_out_via == OptOutVia.REPLY
    finally:
        graph.stop()


# --- opting out ------------------------------------------------------------------------------


def test_a_stop_reply_ends_the_numbers_notices_and_what_was_pending(tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo])
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    ours = opted_in(tenant, [cryo])
    other = opted_in(tenant, [cryo], phone="21999998888")
    notify.scan()  # ours: two ahead, its warning written
    assert optin.opt_out_by_reply(tenant, TO, "obrigado") == 0
    assert optin.opt_out_by_reply(tenant, TO, " sair! ") == 1
    queue.call_next(cryo, device)  # the other customer now has two ahead
    run_worker()
    assert graph.sent_templates() == [("5521999998888", "totem_vez_chegando", ["2", "Crioterapia"])]
    message = Message.objects.get(subscription__ticket=ours)
    assert (message.status, message.last_error) == (MessageStatus.SKIPPED, "opted-out")
    assert Subscription.objects.get(ticket=other).active


def test_the_ticket_page_shows_the_masked_number_and_stops_the_notices(
    client, tenant, cryo, account
):
    ours = opted_in(tenant, [cryo])
    page = client.get(reverse("ticket_status", args=[tenant.slug, ours.token]))
    text = page.content.decode()
    assert "(11) *****-4321" in text and PHONE not in text
    stop = client.post(reverse("whatsapp_stop", args=[tenant.slug, ours.token]))
    assert stop.status_code == 302
    assert Subscription.objects.get(ticket=ours).opted_out_via == OptOutVia.PAGE
    assert 'data-testid="whatsapp"' not in client.get(stop["Location"]).content.decode()


def test_another_tenant_cannot_stop_a_ticket_by_its_token(
    client, tenant, other_tenant, cryo, account
):
    ours = opted_in(tenant, [cryo])
    assert (
        client.post(reverse("whatsapp_stop", args=[other_tenant.slug, ours.token])).status_code
        == 404
    )
    assert Subscription.objects.get(ticket=ours).active


# --- LGPD and secrets ----------------------------------------------------------------------


def test_erasing_a_customer_erases_the_whatsapp_number(tenant, cryo, account):
    ours = opted_in(tenant, [cryo], phone=PHONE)
    ours.customer_cpf = "52998224725"
    ours.save(update_fields=["customer_cpf"])
    retention.erase_customer(tenant, "52998224725")
    subscription = Subscription.objects.get(ticket=ours)
    assert subscription.phone == "" and subscription.opted_out_via == OptOutVia.ERASED


def test_the_accounts_secrets_are_encrypted_at_rest(account):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, app_secret, verify_token FROM messaging_whatsappaccount"
        )
        row = cursor.fetchone()
    assert all(value.startswith("fernet:") for value in row)
    assert WhatsAppAccount.objects.get().access_token == "EAAG-test-token"


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_in_parallel_write_and_send_each_message_once(tenant, cryo, settings):
    graph = FakeGraph().start()
    try:
        settings.WHATSAPP_GRAPH_URL = graph.url
        WhatsAppAccount.objects.create(
            tenant=tenant,
            enabled=True,
            phone_number_id=graph.phone_number_id,
            access_token=graph.token,
            app_secret=graph.app_secret,
            verify_token="v",
        )
        devices = [make_device(tenant, f"Crio {i}", [cryo]) for i in range(3)]
        tickets = [opted_in(tenant, [cryo], phone=f"1198765{i:04d}") for i in range(6)]
        for device in devices:
            queue.call_next(cryo, device)
        workers = 4
        barrier = threading.Barrier(workers)
        errors: list[str] = []

        def worker():
            try:
                barrier.wait()
                for _ in range(3):
                    run_worker()
                    connection.close()
            except Exception as error:  # noqa: BLE001 — any failure is reported
                errors.append(repr(error))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        sent = graph.sent_templates()
        # Three called; of the three waiting, one is next and two have one and two ahead.
        assert (
            sorted(name for _to, name, _p in sent)
            == ["totem_sua_vez"] * 3 + ["totem_vez_chegando"] * 2
        )
        assert len({to for to, _name, _p in sent}) == 5
        assert Message.objects.filter(status=MessageStatus.SENT).count() == 5
        assert len(tickets) == 6
    finally:
        graph.stop()


# --- the kiosk's opt-in ---------------------------------------------------------------------


def test_the_kiosk_asks_for_a_phone_with_the_opt_in_and_records_its_version(
    tenant,
    cryo,
    account,
    kiosk_client,  # noqa: F811
    pix,  # noqa: F811 — the kiosk's fixtures
):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    page = kiosk_client.get(url(tenant, "kiosk_identify")).content.decode()
    assert 'name="whatsapp"' in page and optin.CONSENT_VERSION in page
    refused = identify(kiosk_client, tenant, customer_phone="", whatsapp="on")
    assert refused.status_code == 200
    assert "Digite seu celular para receber os avisos pelo WhatsApp." in refused.content.decode()
    assert identify(kiosk_client, tenant, whatsapp="on")["Location"].endswith("/resumo/")
    buy(kiosk_client, tenant, "cash")
    subscription = Subscription.objects.get()
    assert subscription.consent_version == optin.CONSENT_VERSION
    assert subscription.phone == subscription.ticket.customer_phone == "11912345678"


def test_the_kiosk_offers_no_opt_in_when_the_tenant_sends_no_whatsapp(
    tenant,
    cryo,
    kiosk_client,  # noqa: F811
    pix,  # noqa: F811 — the kiosk's fixtures
):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    assert 'name="whatsapp"' not in kiosk_client.get(url(tenant, "kiosk_identify")).content.decode()
    assert identify(kiosk_client, tenant, whatsapp="on")["Location"].endswith("/resumo/")
    buy(kiosk_client, tenant, "cash")
    assert not Subscription.objects.exists()


def test_deleting_a_ticket_by_retention_takes_its_messages_and_opt_in(tenant, cryo, account, graph):
    device = make_device(tenant, "Crio 1", [cryo])
    ours = opted_in(tenant, [cryo])
    queue.call_next(cryo, device)
    run_worker()
    assert Message.objects.exists()
    retention.delete_tickets([ours.pk])
    assert not Message.objects.exists() and not Subscription.objects.exists()
