"""Alerts to a tenant's Slack webhook and e-mail: printer offline, payments failing, a queue
too long, a wait too old.

`check_tenant` compares the conditions that hold now with the open Alert rows: a new condition
opens an alert and notifies once; a lasting one stays quiet (the open row, unique per
condition, is the memory); one that clears is resolved and says so once. A notification that
could not be sent is tried again at the next check. Run by `manage.py check_alerts` from cron.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import IntegrityError, transaction
from django.db.models import Count, Min
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from equipment.models import Equipment, Kind
from equipment.models import Status as DeviceStatus
from ops.models import Alert, AlertKind, NotificationSettings
from payments.models import PaymentSession, SessionStatus
from tenants.models import Tenant
from tickets.models import LineStatus, TicketLine

log = logging.getLogger(__name__)

PAYMENT_WINDOW = timedelta(minutes=30)
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Condition:
    kind: str
    key: str
    message: str


def current_conditions(tenant: Tenant, config: NotificationSettings, now: datetime):
    """What is wrong at the tenant right now, one Condition per thing."""
    found = []
    printers = Equipment.objects.alive().filter(
        tenant=tenant, kind=Kind.PRINTER, status=DeviceStatus.OFFLINE
    )
    for printer in printers.order_by("pk"):
        found.append(
            Condition(
                AlertKind.PRINTER_OFFLINE,
                str(printer.pk),
                _("Printer %(name)s is offline.") % {"name": printer},
            )
        )
    failed = PaymentSession.objects.filter(
        tenant=tenant, status=SessionStatus.FAILED, failed_at__gte=now - PAYMENT_WINDOW
    ).count()
    if failed >= config.payment_failures_threshold:
        found.append(
            Condition(
                AlertKind.PAYMENTS_FAILING,
                "",
                _("%(count)s payments failed in the last 30 minutes.") % {"count": failed},
            )
        )
    queues = (
        TicketLine.objects.filter(tenant=tenant, status=LineStatus.WAITING, queued_at__isnull=False)
        .values("service_id", "service__name")
        .annotate(waiting=Count("id"), oldest=Min("queued_at"))
        .order_by("service_id")
    )
    for row in queues:
        name = row["service__name"]
        if row["waiting"] > config.queue_length_threshold:
            found.append(
                Condition(
                    AlertKind.QUEUE_LONG,
                    str(row["service_id"]),
                    _("%(count)s people are waiting for %(service)s.")
                    % {"count": row["waiting"], "service": name},
                )
            )
        waited = int((now - row["oldest"]).total_seconds() // 60)
        if waited > config.wait_minutes_threshold:
            found.append(
                Condition(
                    AlertKind.WAIT_LONG,
                    str(row["service_id"]),
                    _("Someone has waited %(minutes)s minutes for %(service)s.")
                    % {"minutes": waited, "service": name},
                )
            )
    return found


# --- sending --------------------------------------------------------------------------------


def send_slack(url: str, text: str) -> None:
    """POST a Slack incoming-webhook message; raises OSError when Slack did not take it."""
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"Slack answered HTTP {response.status}")
    except urllib.error.HTTPError as error:
        raise OSError(f"Slack answered HTTP {error.code}") from error


def send_email(config: NotificationSettings, subject: str, text: str) -> None:
    connection = None
    if config.smtp_host:
        # The tenant's own server; otherwise the installation's default mailer (MAILERS).
        connection = SMTPBackend(
            host=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_username or None,
            password=config.smtp_password or None,
            use_tls=config.smtp_use_tls,
            timeout=TIMEOUT_SECONDS,
        )
    EmailMessage(
        subject,
        text,
        from_email=config.email_from or settings.DEFAULT_FROM_EMAIL,
        to=config.recipients,
        connection=connection,
    ).send()


def notify(config: NotificationSettings, subject: str, text: str) -> bool:
    """Send to every channel configured; True when all of them took it."""
    ok = True
    if config.slack_webhook_url:
        try:
            send_slack(config.slack_webhook_url, f"*{subject}*\n{text}")
        except (OSError, ValueError) as error:
            log.warning("Slack alert for %s failed: %s", config.tenant, error)
            ok = False
    if config.recipients:
        try:
            send_email(config, subject, text)
        except (OSError, ValueError) as error:  # smtplib errors are OSErrors
            log.warning("e-mail alert for %s failed: %s", config.tenant, error)
            ok = False
    return ok


# --- checking -------------------------------------------------------------------------------


@dataclass
class CheckResult:
    opened: int = 0
    resolved: int = 0
    renotified: int = 0


def check_tenant(tenant: Tenant, now: datetime | None = None) -> CheckResult:
    now = now or timezone.now()
    result = CheckResult()
    config = NotificationSettings.objects.filter(tenant=tenant, enabled=True).first()
    if config is None:
        return result
    with translation.override(settings.LANGUAGE_CODE):
        conditions = {(c.kind, c.key): c for c in current_conditions(tenant, config, now)}
        open_alerts = {
            (a.kind, a.key): a
            for a in Alert.objects.filter(tenant=tenant, resolved_at__isnull=True)
        }
        for key, condition in conditions.items():
            alert = open_alerts.get(key)
            if alert is None:
                try:
                    with transaction.atomic():
                        alert = Alert.objects.create(
                            tenant=tenant,
                            kind=condition.kind,
                            key=condition.key,
                            message=condition.message[:300],
                            opened_at=now,
                        )
                except IntegrityError:
                    continue  # a parallel check opened it: it notifies
                result.opened += 1
            elif alert.notified:
                continue  # still true, already said: quiet
            else:
                result.renotified += 1
            subject = _("[%(tenant)s] %(kind)s") % {
                "tenant": tenant.name,
                "kind": AlertKind(condition.kind).label,
            }
            sent = notify(config, subject, condition.message)
            Alert.objects.filter(pk=alert.pk).update(notified=sent)
        for key, alert in open_alerts.items():
            if key in conditions:
                continue
            Alert.objects.filter(pk=alert.pk).update(resolved_at=now)
            result.resolved += 1
            if alert.notified:
                subject = _("[%(tenant)s] resolved: %(kind)s") % {
                    "tenant": tenant.name,
                    "kind": AlertKind(alert.kind).label,
                }
                notify(
                    config, subject, _("Back to normal: %(message)s") % {"message": alert.message}
                )
    return result
