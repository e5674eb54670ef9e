"""Alerts to Slack (a local HTTP sink) and e-mail (Django's outbox, or a local SMTP server),
once per condition; and where a tenant may send them (ops/notifications.py)."""

from __future__ import annotations

import io
import json
import socket
import ssl
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from equipment.models import Kind
from equipment.models import Status as DeviceStatus
from ops import notifications
from ops.models import Alert, AlertKind, NotificationSettings
from ops.notifications import check_tenant
from tests.conftest import RebindingResolver, make_device, queued_ticket
from tests.fake_smtp import FakeSMTP
from tests.test_ops_webhooks import Receiver, self_signed
from tickets import maintenance, queue
from tickets.models import TicketLine


@pytest.fixture(autouse=True)
def _private_receivers(settings):
    """The Slack sink of these tests listens on 127.0.0.1: the platform allows private
    webhook addresses (WEBHOOKS_ALLOW_PRIVATE). The tests of where alerts may go turn it off."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def slack():
    sink = Receiver()
    yield sink
    sink.close()


@pytest.fixture
def config(tenant, slack):
    return NotificationSettings.objects.create(
        tenant=tenant,
        slack_webhook_url=slack.url,
        email_to="owner@studio.example, ops@studio.example",
        email_from="totem@studio.example",
        queue_length_threshold=1,
        wait_minutes_threshold=40,
    )


def slack_texts(sink) -> list[str]:
    return [json.loads(body)["text"] for _headers, body, _status in sink.requests]


def test_a_printer_offline_is_notified_once_while_it_lasts_and_once_when_it_ends(
    tenant, config, slack
):
    printer = make_device(tenant, "Epson balcão", kind=Kind.PRINTER)
    printer.status = DeviceStatus.OFFLINE
    printer.save()
    assert check_tenant(tenant).opened == 1
    assert check_tenant(tenant).opened == 0
    call_command("check_alerts", stdout=io.StringIO())
    assert len(slack.requests) == 1 and len(mail.outbox) == 1
    assert "Epson balcão" in slack_texts(slack)[0]
    assert mail.outbox[0].to == ["owner@studio.example", "ops@studio.example"]
    assert "Epson balcão" in mail.outbox[0].body

    printer.status = DeviceStatus.ONLINE
    printer.save()
    assert check_tenant(tenant).resolved == 1
    check_tenant(tenant)
    assert len(slack.requests) == 2 and len(mail.outbox) == 2
    assert Alert.objects.get().resolved_at is not None


def test_a_long_queue_and_an_old_wait_are_alerts_per_service(tenant, cryo, config, slack):
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    check_tenant(tenant)
    assert list(Alert.objects.values_list("kind", flat=True)) == [AlertKind.QUEUE_LONG]
    TicketLine.objects.update(queued_at=timezone.now() - timedelta(minutes=50))
    check_tenant(tenant)
    assert set(Alert.objects.filter(resolved_at=None).values_list("kind", flat=True)) == {
        AlertKind.QUEUE_LONG,
        AlertKind.WAIT_LONG,
    }
    assert len(slack.requests) == 2
    assert "50" in slack_texts(slack)[1]


def test_an_alert_that_could_not_be_sent_is_sent_at_the_next_check(tenant, cryo, config, slack):
    slack.statuses = [500]
    config.email_to = ""
    config.save()
    queued_ticket(tenant, [cryo])
    queued_ticket(tenant, [cryo])
    check_tenant(tenant)
    assert Alert.objects.get().notified is False
    result = check_tenant(tenant)
    assert result.renotified == 1 and Alert.objects.get().notified is True
    check_tenant(tenant)
    assert len(slack.requests) == 2


def test_a_stuck_service_is_alerted_once_and_resolved_when_it_is_closed(
    midday, tenant, cryo, config, slack
):
    device = make_device(tenant, "Crio 1", [cryo])
    queued_ticket(tenant, [cryo])
    line = queue.call_next(cryo, device)
    queue.start(tenant, line.id)
    check_tenant(tenant)
    assert not Alert.objects.filter(kind=AlertKind.SERVICE_STUCK).exists()

    # Crioterapia takes 10 min: stuck after 30 (the studio's × 3).
    TicketLine.objects.filter(pk=line.pk).update(started_at=timezone.now() - timedelta(minutes=31))
    assert check_tenant(tenant).opened == 1
    alert = Alert.objects.get(kind=AlertKind.SERVICE_STUCK)
    assert alert.key == str(line.pk)
    assert "Crioterapia da senha C001 está parado em Crio 1: em atendimento desde" in alert.message
    assert "[Studio Alfa] Serviço parado" in slack_texts(slack)[0]
    assert check_tenant(tenant).opened == 0  # still stuck, already said

    TicketLine.objects.filter(pk=line.pk).update(started_at=timezone.now() - timedelta(minutes=46))
    assert maintenance.expire()["stuck_closed"] == 1
    assert check_tenant(tenant).resolved == 1
    assert "resolvido" in slack_texts(slack)[-1].lower()


def test_a_tenant_without_notification_settings_is_left_alone(tenant, cryo):
    queued_ticket(tenant, [cryo])
    assert check_tenant(tenant).opened == 0
    assert not Alert.objects.exists()


# --- where a tenant may send alerts: public addresses, SMTP ports, checked and pinned ---------

ADD = "/admin/ops/notificationsettings/add/"
NOT_PUBLIC_SLACK = "não é um endereço público: webhooks vão apenas para a internet"
NOT_PUBLIC_SMTP = "não é um endereço público: e-mails de alerta vão apenas para servidores SMTP"
NOT_SMTP_PORT = "A porta 6379 não é uma porta SMTP; use 25, 465, 587, 2525."


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root")


@pytest.fixture
def smtp():
    with FakeSMTP() as server:
        yield server


def form(tenant, **fields) -> dict:
    data = {
        "tenant": tenant.pk,
        "enabled": "on",
        "slack_webhook_url": "",
        "email_to": "owner@studio.example",
        "email_from": "",
        "smtp_host": "",
        "smtp_port": 587,
        "smtp_username": "",
        "smtp_password": "",
        "smtp_use_tls": "on",
        "queue_length_threshold": 1,
        "wait_minutes_threshold": 40,
        "payment_failures_threshold": 3,
    }
    return data | fields


def smtp_at(host, port):
    return {"smtp_host": host, "smtp_port": port}


HOSTILE = {
    "Slack to Redis on loopback": (
        {"slack_webhook_url": "http://127.0.0.1:6379/"},
        [NOT_PUBLIC_SLACK],
    ),
    "Slack to a name for loopback": (
        {"slack_webhook_url": "http://localhost:8000/hook"},
        [NOT_PUBLIC_SLACK],
    ),
    "SMTP into Redis on loopback": (smtp_at("127.0.0.1", 6379), [NOT_SMTP_PORT, NOT_PUBLIC_SMTP]),
    "SMTP into Redis by name": (smtp_at("localhost", 6379), [NOT_SMTP_PORT, NOT_PUBLIC_SMTP]),
    "SMTP into Redis on the LAN": (smtp_at("10.0.0.5", 6379), [NOT_SMTP_PORT, NOT_PUBLIC_SMTP]),
    "SMTP on loopback, an SMTP port": (smtp_at("127.0.0.1", 25), [NOT_PUBLIC_SMTP]),
    "SMTP to the cloud's metadata service": (smtp_at("169.254.169.254", 587), [NOT_PUBLIC_SMTP]),
    "SMTP to a public host's Redis": (smtp_at("93.184.215.14", 6379), [NOT_SMTP_PORT]),
}


@pytest.mark.parametrize("fields, messages", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_studio_manager_cannot_send_alerts_into_the_platform_s_network(
    client, tenant, bob, settings, fields, messages
):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(bob)

    response = client.post(ADD, form(tenant, **fields))

    assert response.status_code == 200  # the form again, with the reasons in pt-BR
    for message in messages:
        assert message in response.content.decode()
    assert not NotificationSettings.objects.exists()


def test_a_studio_manager_saves_a_public_slack_and_smtp_server(client, tenant, bob, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(bob)
    fields = {"slack_webhook_url": "https://93.184.215.14/services/T0/B0/x"}

    response = client.post(ADD, form(tenant, **fields, **smtp_at("93.184.215.14", 587)))

    assert response.status_code == 302
    assert NotificationSettings.objects.get().smtp_set_by_platform is False


def test_an_smtp_server_the_platform_set_stays_while_the_studio_edits_the_rest(
    client, tenant, root, bob
):
    client.force_login(root)
    assert client.post(ADD, form(tenant, **smtp_at("127.0.0.1", 2500))).status_code == 302
    config = NotificationSettings.objects.get()
    change = reverse("admin:ops_notificationsettings_change", args=[config.pk])
    client.force_login(bob)

    kept = client.post(change, form(tenant, **smtp_at("127.0.0.1", 2500), email_from="a@b.example"))
    moved = client.post(change, form(tenant, **smtp_at("127.0.0.1", 6379)))

    assert kept.status_code == 302 and moved.status_code == 200
    assert NOT_SMTP_PORT in moved.content.decode()
    config.refresh_from_db()
    assert (config.smtp_port, config.email_from) == (2500, "a@b.example")
    assert config.smtp_set_by_platform is True


def printer_offline(tenant):
    printer = make_device(tenant, "Epson balcão", kind=Kind.PRINTER)
    printer.status = DeviceStatus.OFFLINE
    printer.save()


@pytest.mark.parametrize("smtp_port_allowed", [False, True], ids=["default ports", "port allowed"])
def test_alerts_saved_to_loopback_anyway_are_refused_at_send_and_nothing_reaches_it(
    tenant, slack, smtp, settings, smtp_port_allowed
):
    settings.WEBHOOKS_ALLOW_PRIVATE = False  # production defaults
    if smtp_port_allowed:  # then the address alone is what refuses it
        settings.ALERT_SMTP_PORTS = [smtp.port]
    NotificationSettings.objects.create(  # saved before the rule, or by a bug
        tenant=tenant,
        slack_webhook_url=slack.url,
        email_to="owner@studio.example",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
    )
    printer_offline(tenant)

    check_tenant(tenant)

    assert slack.requests == []
    assert (smtp.connections, smtp.received) == (0, b"")
    alert = Alert.objects.get()
    assert alert.notified is False
    slack_reason = "Slack: endereço não permitido: webhooks vão apenas para endereços públicos"
    smtp_reason = NOT_PUBLIC_SMTP if smtp_port_allowed else f"A porta {smtp.port} não é uma porta"
    assert alert.send_error.startswith(f"{slack_reason}; e-mail: ")
    assert smtp_reason in alert.send_error


def test_an_smtp_name_that_resolves_to_loopback_after_it_was_saved_gets_no_byte(
    client, tenant, bob, smtp, settings, monkeypatch
):
    settings.ALERT_SMTP_PORTS = [smtp.port]
    name = RebindingResolver(monkeypatch, "smtp.studio.test", "93.184.215.14", "127.0.0.1")
    client.force_login(bob)
    saved = client.post(ADD, form(tenant, **smtp_at("smtp.studio.test", smtp.port)))
    assert saved.status_code == 302  # public then
    printer_offline(tenant)

    check_tenant(tenant)

    assert name.calls == 2 and (smtp.connections, smtp.received) == (0, b"")
    assert NOT_PUBLIC_SMTP in Alert.objects.get().send_error


def platform_smtp(tenant, host, port, tls=False):
    """Notification settings whose SMTP server a platform superuser set (any address)."""
    return NotificationSettings.objects.create(
        tenant=tenant,
        email_to="owner@studio.example",
        smtp_host=host,
        smtp_port=port,
        smtp_use_tls=tls,
        smtp_set_by_platform=True,
    )


def test_an_alert_e_mail_goes_to_the_address_that_was_checked(tenant, smtp, monkeypatch):
    name = RebindingResolver(monkeypatch, "smtp.studio.test", "127.0.0.1", "127.0.0.2")
    platform_smtp(tenant, "smtp.studio.test", smtp.port)  # a second lookup: 127.0.0.2
    printer_offline(tenant)

    check_tenant(tenant)

    assert name.calls == 1
    [message] = smtp.messages
    assert "Epson balc" in message.decode()
    assert Alert.objects.values_list("notified", "send_error").get() == (True, "")


@pytest.mark.parametrize(
    "certificate_for, delivered",
    [("localhost", True), ("smtp.other.test", False)],
    ids=["the host's certificate", "another name's certificate"],
)
def test_starttls_checks_the_certificate_against_the_host_s_name(
    tenant, tmp_path, monkeypatch, certificate_for, delivered
):
    certificate, key = self_signed(tmp_path, certificate_for)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # trusted, as a CA's would be
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    with FakeSMTP(tls=context) as server:
        platform_smtp(tenant, "localhost", server.port, tls=True)  # connects to 127.0.0.1
        printer_offline(tenant)

        check_tenant(tenant)

    assert len(server.messages) == int(delivered)
    alert = Alert.objects.get()
    if not delivered:
        assert b"MAIL FROM" not in server.received
        assert alert.send_error == "e-mail: erro de TLS (certificado)"


def test_an_smtp_server_on_the_smtps_port_speaks_tls_from_the_first_byte(
    tenant, tmp_path, monkeypatch
):
    certificate, key = self_signed(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    with FakeSMTP(implicit_tls=context) as server:
        monkeypatch.setattr(notifications, "SMTPS_PORT", server.port)  # 465 needs root
        platform_smtp(tenant, "localhost", server.port, tls=True)  # STARTTLS asked: ignored
        printer_offline(tenant)

        check_tenant(tenant)

    assert len(server.messages) == 1
    assert Alert.objects.values_list("notified", "send_error").get() == (True, "")


def test_what_a_server_answers_never_reaches_the_tenant(tenant):
    banner = b"-ERR unknown command 'EHLO', redis 10.0.0.7:6379 requirepass s3cret\r\n"
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        connection, _address = listener.accept()
        with connection:
            connection.sendall(banner)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    platform_smtp(tenant, "127.0.0.1", listener.getsockname()[1])
    printer_offline(tenant)

    check_tenant(tenant)

    thread.join(5)
    listener.close()
    assert Alert.objects.get().send_error == "e-mail: o servidor SMTP não aceitou"
