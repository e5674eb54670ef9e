"""The audit log: every critical action leaves who, what, when and from where."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.audit import record
from tenants.models import AuditAction, AuditLog
from tests.conftest import make_device, queued_ticket
from tickets import queue


def test_a_login_is_audited_in_the_users_tenant_with_the_ip(client, tenant, alice):
    client.post(
        reverse("login"), {"username": "alice", "password": "pw-alice"}, REMOTE_ADDR="10.1.2.3"
    )
    entry = AuditLog.objects.get(action=AuditAction.LOGIN)
    assert (entry.tenant, entry.user, entry.username) == (tenant, alice, "alice")
    assert entry.ip == "10.1.2.3"


def test_a_logout_is_audited(client, tenant, alice):
    client.force_login(alice)
    client.post(reverse("logout"))
    assert AuditLog.objects.filter(action=AuditAction.LOGOUT, user=alice, tenant=tenant).exists()


def test_a_failed_login_is_audited_without_the_password(client, tenant, alice):
    client.post(reverse("login"), {"username": "alice", "password": "wrong-guess"})
    entry = AuditLog.objects.get(action=AuditAction.LOGIN_FAILED)
    assert entry.tenant == tenant and entry.user is None and entry.username == "alice"
    assert "wrong-guess" not in str(entry.data)


def test_a_failed_login_for_an_unknown_name_has_no_tenant(client, tenant):
    client.post(reverse("login"), {"username": "nobody", "password": "x"})
    entry = AuditLog.objects.get(action=AuditAction.LOGIN_FAILED)
    assert entry.tenant is None and entry.username == "nobody"


def test_cancelling_a_service_line_is_audited_with_its_reason(tenant, cryo, boots, alice):
    ticket = queued_ticket(tenant, [cryo, boots])
    line = ticket.lines.get(service=cryo)
    queue.cancel_line(tenant, line.pk, user=alice, reason="customer left")
    entry = AuditLog.objects.get(action=AuditAction.LINE_CANCELLED)
    assert (entry.user, entry.entity, entry.entity_id) == (
        alice,
        "tickets.ticketline",
        str(line.pk),
    )
    assert entry.data == {
        "ticket": ticket.number,
        "service": "Crioterapia",
        "reason": "customer left",
    }


def test_cancelling_a_ticket_is_audited(tenant, cryo, bob):
    ticket = queued_ticket(tenant, [cryo])
    queue.cancel_ticket(tenant, ticket.pk, user=bob, reason="duplicate")
    entry = AuditLog.objects.get(action=AuditAction.TICKET_CANCELLED)
    assert (entry.tenant, entry.user, entry.entity_id) == (tenant, bob, str(ticket.pk))
    assert entry.data["reason"] == "duplicate"


def test_a_refused_cancellation_leaves_no_entry(tenant, cryo, alice):
    ticket = queued_ticket(tenant, [cryo])
    with pytest.raises(queue.QueueError):
        queue.cancel_ticket(tenant, ticket.pk, user=alice, reason="  ")
    device = make_device(tenant, "Cryo 1", [cryo])
    line = queue.call_next(cryo, device, user=alice)
    queue.start(tenant, line.pk, user=alice)
    queue.complete(tenant, line.pk, user=alice)
    with pytest.raises(queue.QueueError):
        queue.cancel_line(tenant, line.pk, user=alice, reason="too late")
    assert not AuditLog.objects.exists()


def test_an_unknown_action_is_refused(tenant):
    with pytest.raises(ValueError, match="unknown audit action"):
        record("ticket_canceled", tenant=tenant)


def test_the_audit_admin_is_read_only_and_scoped_to_the_managers_tenants(
    client, tenant, other_tenant, bob, charlie
):
    mine = record(AuditAction.REPRINT, tenant=tenant, entity="tickets.ticket", entity_id=1)
    theirs = record(AuditAction.REPRINT, tenant=other_tenant, entity="tickets.ticket", entity_id=2)
    client.force_login(bob)
    listing = client.get(reverse("admin:tenants_auditlog_changelist"))
    assert listing.status_code == 200
    shown = listing.context["cl"].queryset
    assert list(shown.filter(action=AuditAction.REPRINT)) == [mine]
    assert all(entry.tenant == tenant for entry in shown)
    page = client.get(reverse("admin:tenants_auditlog_change", args=[mine.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(reverse("admin:tenants_auditlog_change", args=[theirs.pk])).status_code in (
        302,
        404,
    )
    assert client.get(reverse("admin:tenants_auditlog_add")).status_code == 403


def test_webhook_settings_saved_in_admin_are_audited_without_the_secret(client, tenant, bob):
    from tenants.models import WebhookEndpoint

    client.force_login(bob)
    response = client.post(
        reverse("admin:tenants_webhookendpoint_add"),
        {
            "tenant": tenant.pk,
            # A public address needs no DNS here; saving checks where it resolves.
            "target_url": "https://93.184.215.14/hooks/totem",
            "secret": "a-very-long-shared-secret",
            "enabled": "on",
            "event_types": ["ticket.created", "payment.paid"],
        },
    )
    assert response.status_code == 302, response.content
    hook = WebhookEndpoint.objects.get()
    assert hook.secret == "a-very-long-shared-secret"
    entry = AuditLog.objects.get(action=AuditAction.SETTINGS_CHANGED)
    assert entry.user == bob and entry.entity == "tenants.webhookendpoint"
    assert entry.data["changed"]["secret"] == "***"
    assert entry.data["changed"]["event_types"] == ["ticket.created", "payment.paid"]
    assert "a-very-long-shared-secret" not in str(AuditLog.objects.values_list("data"))
    page = client.get(reverse("admin:tenants_webhookendpoint_change", args=[hook.pk]))
    assert b"a-very-long-shared-secret" not in page.content


def test_the_webhook_delivery_log_shows_the_manager_each_attempt_but_not_the_receivers_answer(
    client, tenant, bob, charlie, django_user_model
):
    from tenants.models import WebhookAttempt, WebhookEndpoint, WebhookOutbox

    hook = WebhookEndpoint.objects.create(
        tenant=tenant, target_url="https://crm.example/h", secret="x" * 16
    )
    row = WebhookOutbox.objects.create(
        tenant=tenant, endpoint=hook, event_type="ticket.created", payload={"number": "C001"}
    )
    WebhookAttempt.objects.create(
        outbox=row, number=1, status_code=599, error="o receptor não aceitou"
    )
    client.force_login(bob)
    page = client.get(reverse("admin:tenants_webhookoutbox_change", args=[row.pk]))
    assert page.status_code == 200 and "o receptor não aceitou" in page.content.decode()
    # An internal service's answer would tell the tenant about the platform's network.
    assert b"field-status_code" not in page.content and b"599" not in page.content
    root = django_user_model.objects.create_superuser("root", password="pw-root")
    client.force_login(root)
    page = client.get(reverse("admin:tenants_webhookoutbox_change", args=[row.pk]))
    assert b"field-status_code" in page.content and b"599" in page.content  # the platform
    client.force_login(charlie)
    assert client.get(reverse("admin:tenants_webhookoutbox_change", args=[row.pk])).status_code in (
        302,
        404,
    )
