"""Alerts to Slack (a local HTTP sink) and e-mail (Django's outbox), once per condition."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from equipment.models import Kind
from equipment.models import Status as DeviceStatus
from ops.models import Alert, AlertKind, NotificationSettings
from ops.notifications import check_tenant
from tests.conftest import make_device, queued_ticket
from tests.test_ops_webhooks import Receiver
from tickets.models import TicketLine


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


def test_a_tenant_without_notification_settings_is_left_alone(tenant, cryo):
    queued_ticket(tenant, [cryo])
    assert check_tenant(tenant).opened == 0
    assert not Alert.objects.exists()
