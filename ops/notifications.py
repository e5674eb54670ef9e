"""Alerts to a tenant's Slack webhook and e-mail: printer offline, payments failing, a queue
too long, a wait too old, a service stuck (called or in service past the tenant's limit).

`check_tenant` compares the conditions that hold now with the open Alert rows: a new condition
opens an alert and notifies once; a lasting one stays quiet (the open row, unique per
condition, is the memory); one that clears is resolved and says so once. A notification that
could not be sent is tried again at the next check. Run by `manage.py check_alerts` from cron.

Where alerts may go follows outgoing webhooks (tenants/webhooks.py, tenants/netguard.py): the
Slack URL is posted as a webhook is (public addresses unless WEBHOOKS_ALLOW_PRIVATE, resolved
and pinned, no redirect followed); a tenant's SMTP host must resolve only to public addresses,
on a port of ALERT_SMTP_PORTS, unless a platform superuser set it
(`NotificationSettings.smtp_set_by_platform`), and the connection goes to the address checked
while TLS still checks the certificate against the host's name. Both are checked when saved
(ops/admin.py) and again at every send: a name can resolve elsewhere by then. An empty SMTP
host is the platform's own mailer (EMAIL_URL). What the tenant reads of a failure
(`Alert.send_error`) is a short reason of ours, never what a server answered.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import smtplib
import ssl
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
from fiscal.models import Invoice
from ops.models import Alert, AlertKind, NotificationSettings
from payments.models import PaymentSession, SessionStatus
from tenants import netguard, webhooks
from tenants.models import Tenant
from tickets import queue
from tickets.models import LineStatus, TicketLine

log = logging.getLogger(__name__)

PAYMENT_WINDOW = timedelta(minutes=30)
TIMEOUT_SECONDS = 10
SMTPS_PORT = 465  # SMTP in TLS from the first byte (RFC 8314); the others plain or STARTTLS


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
    for line in queue.stuck_lines(tenant, now):
        since = timezone.localtime(line.started_at or line.called_at, tenant.tzinfo)
        found.append(
            Condition(
                AlertKind.SERVICE_STUCK,
                str(line.pk),
                _(
                    "%(service)s of ticket %(number)s is stuck on %(device)s: %(status)s since "
                    "%(time)s."
                )
                % {
                    "service": line.service.name,
                    "number": line.ticket.number,
                    "device": line.equipment.name if line.equipment else "—",
                    "status": line.get_status_display().lower(),
                    "time": f"{since:%H:%M}",
                },
            )
        )
    # NFS-e a person must look at: refused, unreachable past its retries, a refund that could
    # not be cancelled (fiscal/issuing.py flags them; admin shows the provider's words).
    flagged = Invoice.objects.filter(tenant=tenant, needs_attention=True).order_by("pk")[:20]
    for invoice in flagged:
        text = _("NFS-e of %(sale)s (%(status)s): %(message)s") % {
            "sale": invoice.description.split(" | ")[0][:80],
            "status": invoice.get_status_display().lower(),
            "message": invoice.provider_message or "—",
        }
        found.append(Condition(AlertKind.NFSE_FAILED, str(invoice.pk), text[:300]))
    return found


# --- sending --------------------------------------------------------------------------------


def send_slack(url: str, text: str) -> int:
    """POST a Slack incoming-webhook message as webhooks are posted; the HTTP status.

    Raises netguard.Refused before connecting, OSError and the like after (webhooks.post).
    """
    body = json.dumps({"text": text}).encode()
    headers = {"Content-Type": "application/json", "User-Agent": webhooks.USER_AGENT}
    return webhooks.post(url, body, headers)


def check_smtp_port(port: int) -> None:
    """Refuse (netguard.NotAllowed, a message for the tenant) a port not on ALERT_SMTP_PORTS:
    a public host may still run other services (the platform's own, on its public address)."""
    if port not in settings.ALERT_SMTP_PORTS:
        raise netguard.NotAllowed(
            _("Port %(port)s is not an SMTP port; use %(ports)s.")
            % {"port": port, "ports": ", ".join(map(str, settings.ALERT_SMTP_PORTS))}
        )


def check_smtp_host(host: str, port: int) -> list[netguard.Address]:
    """The addresses of a tenant's SMTP host, all public; netguard.Refused (for the tenant)
    otherwise."""
    try:
        return netguard.resolve(host, port, netguard.is_public)
    except netguard.NotAllowed:
        # The addresses it resolved to are not said: they may be the platform's.
        raise netguard.NotAllowed(
            _(
                "%(host)s is not a public address: alert e-mails go only to SMTP servers on the "
                "internet (leave it empty to use the server's own)."
            )
            % {"host": host}
        ) from None


def smtp_addresses(config: NotificationSettings) -> list[netguard.Address]:
    """Where `config`'s SMTP connection may go, checked now; netguard.Refused otherwise.
    A host the platform set is only resolved."""
    host, port = config.smtp_host.strip(), config.smtp_port
    if config.smtp_set_by_platform:
        return netguard.resolve(host, port, lambda ip: True)
    check_smtp_port(port)
    return check_smtp_host(host, port)


class PinnedSMTP(smtplib.SMTP):
    """smtplib's SMTP connected to addresses already checked, never to the name again.

    smtplib keeps the name (`host`) for TLS — STARTTLS and, with `context` (port 465), TLS from
    the first byte — so the certificate is checked against the name, not the address.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: list[netguard.Address],
        context: ssl.SSLContext | None = None,
        **kwargs,
    ) -> None:
        self.addresses, self.context = addresses, context
        super().__init__(host, port, **kwargs)  # connects: addresses must be set before

    def _get_socket(self, host: str, port: int, timeout: float):
        # smtplib's hook for how to connect (SMTP_SSL and LMTP override it too).
        sock = netguard.connect(self.addresses, timeout)
        if self.context is None:
            return sock
        try:
            return self.context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


class PinnedSMTPBackend(SMTPBackend):
    """Django's SMTP backend over PinnedSMTP: `addresses` come from `smtp_addresses`."""

    def __init__(self, *, addresses: list[netguard.Address], **kwargs) -> None:
        super().__init__(**kwargs)
        self.addresses = addresses

    @property
    def connection_class(self):
        return functools.partial(PinnedSMTP, addresses=self.addresses)


def send_email(config: NotificationSettings, subject: str, text: str) -> None:
    """Raises netguard.Refused before connecting, OSError (smtplib's errors) or ValueError."""
    message = EmailMessage(
        subject,
        text,
        from_email=config.email_from or settings.DEFAULT_FROM_EMAIL,
        to=config.recipients,
    )
    if not config.smtp_host:
        message.send()  # the installation's default mailer (MAILERS)
        return
    # The tenant's own server. Built here, not from MAILERS: its options are the tenant's; an
    # alias keeps Django off its deprecated settings-based path.
    use_ssl = config.smtp_port == SMTPS_PORT  # the port's meaning, whatever use_tls says
    PinnedSMTPBackend(
        alias="tenant-smtp",
        addresses=smtp_addresses(config),
        host=config.smtp_host.strip(),
        port=config.smtp_port,
        username=config.smtp_username or None,
        password=config.smtp_password or None,
        use_tls=config.smtp_use_tls and not use_ssl,
        use_ssl=use_ssl,
        timeout=TIMEOUT_SECONDS,
    ).send_messages([message])


def email_failure_reason(error: BaseException) -> str:
    """What the tenant reads of an e-mail not sent: ours and short, never the server's answer
    (an internal service's banner would describe the platform's network)."""
    if isinstance(error, netguard.Refused):
        return str(error)  # ours: the host as typed and what the platform allows
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return _("SMTP login refused")
    if isinstance(error, smtplib.SMTPSenderRefused | smtplib.SMTPRecipientsRefused):
        return _("the SMTP server refused the sender or the recipients")
    if isinstance(error, smtplib.SMTPException):
        return _("the SMTP server did not accept it")
    return webhooks.failure_reason(None, error)  # TLS, time out, could not connect…


def notify(config: NotificationSettings, subject: str, text: str) -> str:
    """Send to every channel configured; "" when all of them took it, else why not, for the
    tenant (the detail goes to the platform's log)."""
    failed = []
    if config.slack_webhook_url:
        status, error = None, None
        try:
            status = send_slack(config.slack_webhook_url, f"*{subject}*\n{text}")
        except (OSError, ValueError, http.client.HTTPException, netguard.Refused) as exc:
            error = exc
        if status is None or not 200 <= status < 300:
            log.warning("Slack alert for %s failed: %r (HTTP %s)", config.tenant, error, status)
            reason = webhooks.failure_reason(status, error)
            failed.append(_("Slack: %(reason)s") % {"reason": reason})
    if config.recipients:
        try:
            send_email(config, subject, text)
        except (OSError, ValueError, netguard.Refused) as error:  # smtplib errors are OSErrors
            log.warning("e-mail alert for %s failed: %r", config.tenant, error)
            reason = email_failure_reason(error)
            failed.append(_("e-mail: %(reason)s") % {"reason": reason})
    return "; ".join(failed)


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
            failed = notify(config, subject, condition.message)
            Alert.objects.filter(pk=alert.pk).update(notified=not failed, send_error=failed[:300])
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
