"""Outgoing webhooks: written with the change, delivered signed, retried, never lost."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from tenants import webhooks
from tenants.models import OutboxStatus, WebhookAttempt, WebhookEndpoint, WebhookOutbox
from tests.conftest import RebindingResolver, make_device, make_ticket, queued_ticket
from tickets import queue

SECRET = "whsec-test-123"


@pytest.fixture(autouse=True)
def _private_receivers(settings):
    """The receivers of these tests listen on 127.0.0.1: the platform allows private
    addresses (WEBHOOKS_ALLOW_PRIVATE). The tests that prove them refused turn it off."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


class Receiver:
    """An HTTP server on 127.0.0.1 that answers `statuses` in turn (then 200), a redirect
    to `location` when the status says so; it records every request, whatever its method."""

    def __init__(self, statuses=(), location=""):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                if location and 300 <= status < 400:
                    self.send_header("Location", location)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver(statuses=[500, 503])
    yield server
    server.close()


def endpoint(tenant, url, events=()):
    return WebhookEndpoint.objects.create(
        tenant=tenant, target_url=url, secret=SECRET, event_types=list(events)
    )


def test_an_event_is_delivered_once_signed_after_two_failures(tenant, cryo, receiver):
    endpoint(tenant, receiver.url, ["ticket.created"])
    ticket = make_ticket(tenant, [cryo])
    row = WebhookOutbox.objects.get()
    start = timezone.now()
    assert webhooks.deliver_due(now=start) == 1
    assert webhooks.deliver_due(now=start) == 0  # not due again before its backoff
    assert webhooks.deliver_due(now=start + timedelta(seconds=31)) == 1
    assert webhooks.deliver_due(now=start + timedelta(seconds=31 + 61)) == 1
    assert webhooks.deliver_due(now=start + timedelta(days=3)) == 0

    row.refresh_from_db()
    assert row.status == OutboxStatus.DELIVERED and row.attempts == 3
    assert [r[2] for r in receiver.requests] == [500, 503, 200]
    log = list(WebhookAttempt.objects.filter(outbox=row).values_list("number", "status_code"))
    assert log == [(1, 500), (2, 503), (3, 200)]
    # The tenant reads our reason, never the receiver's answer (tenants/ops_admin.py).
    reasons = WebhookAttempt.objects.filter(outbox=row).values_list("error", flat=True)
    assert list(reasons) == ["o receptor não aceitou", "o receptor não aceitou", ""]
    headers, body, _status = receiver.requests[-1]
    expected = hmac.new(
        SECRET.encode(), headers["X-Totem-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Totem-Signature"] == f"sha256={expected}"
    assert headers["X-Totem-Event"] == "ticket.created"
    event = json.loads(body)
    assert event["id"] == headers["X-Totem-Delivery"] == str(row.event_id)
    assert event["data"]["number"] == ticket.number and event["tenant"] == "studio"
    assert "Maria" not in body.decode()  # no personal data leaves


def test_a_receiver_that_is_down_loses_nothing(tenant, cryo):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    endpoint(tenant, url)
    make_ticket(tenant, [cryo])
    start = timezone.now()
    webhooks.deliver_due(now=start)
    row = WebhookOutbox.objects.get()
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at == start + timedelta(seconds=30)
    assert WebhookAttempt.objects.get().error


def test_an_event_claimed_by_a_worker_that_died_is_delivered_once_after_its_lease(tenant, cryo):
    server = Receiver()
    try:
        endpoint(tenant, server.url)
        make_ticket(tenant, [cryo])
        start = timezone.now()
        assert len(webhooks.claim(start)) == 1  # a worker took it, then was killed
        assert webhooks.deliver_due(now=start + timedelta(seconds=1)) == 0  # still leased
        assert server.requests == []

        after = start + webhooks.LEASE + timedelta(seconds=1)  # the restarted worker
        assert webhooks.deliver_due(now=after) == 1
        assert webhooks.deliver_due(now=after + timedelta(days=1)) == 0
    finally:
        server.close()
    row = WebhookOutbox.objects.get()
    assert row.status == OutboxStatus.DELIVERED and row.attempts == 2
    assert len(server.requests) == 1


def test_a_rolled_back_change_writes_no_event(tenant, cryo):
    endpoint(tenant, "http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError), transaction.atomic():
        make_ticket(tenant, [cryo])
        assert WebhookOutbox.objects.count() == 1
        raise RuntimeError
    assert not WebhookOutbox.objects.exists()


def test_calls_and_completions_are_events_for_the_endpoints_that_want_them(tenant, cryo, alice):
    wants_all = endpoint(tenant, "http://127.0.0.1:9/all")
    only_done = endpoint(tenant, "http://127.0.0.1:9/done", ["ticket.completed"])
    WebhookEndpoint.objects.create(
        tenant=tenant, target_url="http://127.0.0.1:9/off", secret="x", enabled=False
    )
    ticket = queued_ticket(tenant, [cryo])
    device = make_device(tenant, "Cryo 1", [cryo])
    line = queue.call_next(cryo, device, user=alice)
    queue.start(tenant, line.pk, user=alice)
    queue.complete(tenant, line.pk, user=alice)
    sent = list(WebhookOutbox.objects.order_by("id").values_list("endpoint", "event_type"))
    assert sent == [
        (wants_all.pk, "ticket.created"),
        (wants_all.pk, "ticket.called"),
        (wants_all.pk, "ticket.completed"),
        (only_done.pk, "ticket.completed"),
    ]
    called = WebhookOutbox.objects.get(event_type="ticket.called").payload
    assert called["equipment"] == "Cryo 1" and called["number"] == ticket.number


def test_an_event_is_given_up_after_the_last_attempt_and_can_be_retried(tenant, cryo):
    endpoint(tenant, "http://127.0.0.1:9/hook")
    make_ticket(tenant, [cryo])
    WebhookOutbox.objects.update(attempts=webhooks.MAX_ATTEMPTS - 1)
    webhooks.deliver_due()
    row = WebhookOutbox.objects.get()
    assert row.status == OutboxStatus.FAILED
    assert webhooks.retry(WebhookOutbox.objects.all()) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)


def test_the_worker_command_delivers_what_is_due_once(tenant, cryo):
    server = Receiver()
    try:
        endpoint(tenant, server.url)
        make_ticket(tenant, [cryo])
        make_ticket(tenant, [cryo])
        call_command("deliver_webhooks", "--once", stdout=io.StringIO())
    finally:
        server.close()
    assert len(server.requests) == 2
    assert set(WebhookOutbox.objects.values_list("status", flat=True)) == {"delivered"}


def test_an_unknown_event_type_is_refused(tenant):
    with pytest.raises(ValueError):
        webhooks.enqueue(tenant, "ticket.exploded", {})


# --- only public addresses, resolved once and pinned ------------------------------------------

NOT_ALLOWED = "endereço não permitido: webhooks vão apenas para endereços públicos"
PRIVATE = [
    "http://127.0.0.1:6379/",
    "http://localhost:8000/hook",
    "http://[::1]:8000/hook",
    "http://[::ffff:127.0.0.1]:6379/",
    "http://10.0.0.5:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:8000/hook",
]


def add_in_admin(client, tenant, url):
    return client.post(
        reverse("admin:tenants_webhookendpoint_add"),
        {"tenant": tenant.pk, "target_url": url, "secret": "s" * 16, "enabled": "on"},
    )


@pytest.mark.parametrize("url", PRIVATE)
def test_a_manager_cannot_save_a_webhook_to_a_private_address(client, tenant, bob, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(bob)

    response = add_in_admin(client, tenant, url)

    assert response.status_code == 200
    assert "não é um endereço público: webhooks vão apenas para a internet" in (
        response.content.decode()
    )
    assert not WebhookEndpoint.objects.exists()


def test_a_webhook_to_a_private_address_is_refused_at_delivery_and_nothing_reaches_it(
    tenant, cryo, receiver, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    endpoint(tenant, receiver.url)  # saved before the rule, or by a bug
    endpoint(tenant, receiver.url.replace("127.0.0.1", "localhost"))
    make_ticket(tenant, [cryo])

    assert webhooks.deliver_due() == 2

    assert receiver.requests == []
    attempts = WebhookAttempt.objects.values_list("status_code", "error")
    assert list(attempts) == [(None, NOT_ALLOWED)] * 2
    rows = WebhookOutbox.objects.values_list("status", "last_error")
    assert set(rows) == {(OutboxStatus.PENDING, NOT_ALLOWED)}


def test_a_redirect_is_not_followed(tenant, cryo):
    inside = Receiver()
    outside = Receiver(statuses=[302], location=inside.url)
    try:
        endpoint(tenant, outside.url)
        make_ticket(tenant, [cryo])
        webhooks.deliver_due()
    finally:
        outside.close()
        inside.close()
    assert len(outside.requests) == 1 and inside.requests == []
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.error) == (302, "redirecionamento não seguido")
    assert WebhookOutbox.objects.get().status == OutboxStatus.PENDING


def test_a_webhook_is_posted_to_the_address_that_was_checked(tenant, cryo, monkeypatch):
    server = Receiver()  # on 127.0.0.1; a second lookup of the name would answer 127.0.0.2
    name = RebindingResolver(monkeypatch, "hooks.studio.test", "127.0.0.1", "127.0.0.2")
    try:
        endpoint(tenant, f"http://hooks.studio.test:{server.server.server_port}/hook")
        make_ticket(tenant, [cryo])
        webhooks.deliver_due()
    finally:
        server.close()
    assert WebhookOutbox.objects.get().status == OutboxStatus.DELIVERED
    [(headers, _body, _status)] = server.requests
    assert headers["Host"] == f"hooks.studio.test:{server.server.server_port}"
    assert name.calls == 1


def test_a_name_that_resolves_to_loopback_after_it_was_saved_reaches_nothing(
    client, tenant, bob, cryo, receiver, settings, monkeypatch
):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    name = RebindingResolver(monkeypatch, "hooks.studio.test", "93.184.215.14", "127.0.0.1")
    url = f"http://hooks.studio.test:{receiver.server.server_port}/hook"
    client.force_login(bob)
    assert add_in_admin(client, tenant, url).status_code == 302  # public when saved
    make_ticket(tenant, [cryo])

    webhooks.deliver_due()

    assert name.calls == 2 and receiver.requests == []
    assert WebhookAttempt.objects.get().error == NOT_ALLOWED


def test_a_receiver_whose_certificate_is_not_trusted_gets_nothing(tenant, cryo, tmp_path):
    import ssl

    certificate, key = self_signed(tmp_path, "localhost")
    server = Receiver()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    try:
        endpoint(tenant, f"https://localhost:{server.server.server_port}/hook")
        make_ticket(tenant, [cryo])
        webhooks.deliver_due()
    finally:
        server.close()
    assert server.requests == []
    assert WebhookAttempt.objects.get().error == "erro de TLS (certificado)"


def self_signed(folder, name):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = timezone.now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
