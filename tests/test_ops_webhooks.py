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
from django.utils import timezone

from tenants import webhooks
from tenants.models import OutboxStatus, WebhookAttempt, WebhookEndpoint, WebhookOutbox
from tests.conftest import make_device, make_ticket, queued_ticket
from tickets import queue

SECRET = "whsec-test-123"


class Receiver:
    """An HTTP server on 127.0.0.1 that answers `statuses` in turn (then 200)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()

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
