"""WhatsApp notifications: a tenant's Cloud API account, a ticket's opt-in, the messages sent.

A message row is written by the worker when the queue calls for it (messaging/notify.py) and
sent by the worker (messaging/outbox.py); nothing is sent on a request's path. The row keeps
what the LGPD lets us keep of a message: which template, when, and what Meta said of its
delivery — never the text or its parameters, which are built from the ticket when it is sent.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.br import mask_phone
from tenants.compiled import CompiledRead
from tenants.crypto import EncryptedCharField
from tenants.models import Tenant
from tickets.models import Ticket, TicketLine

# Meta's ids are numbers written as strings; anything else in a URL path is refused at save.
GRAPH_ID = RegexValidator(r"^\d{5,20}$", _("Digits only, as Meta shows it."))
API_VERSION = RegexValidator(r"^v\d{1,3}\.\d$", _("Like v23.0."))
TEMPLATE_NAME = RegexValidator(
    r"^[a-z0-9_]{1,512}$", _("Lower-case letters, digits and underscores, as Meta names it.")
)


class WhatsAppAccount(models.Model):
    """A tenant's WhatsApp Business number on the Cloud API. No row, or not enabled: the
    tenant sends nothing and the kiosk asks for no opt-in."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="whatsapp")
    enabled = models.BooleanField(_("send WhatsApp messages"), default=False)
    phone_number_id = models.CharField(_("phone number ID"), max_length=20, validators=[GRAPH_ID])
    access_token = EncryptedCharField(_("access token"), max_length=400)
    app_secret = EncryptedCharField(
        _("app secret"),
        max_length=100,
        help_text=_("Meta signs its webhooks with it (X-Hub-Signature-256)."),
    )
    verify_token = EncryptedCharField(
        _("webhook verify token"),
        max_length=100,
        help_text=_("The text typed in Meta's webhook setup, checked when Meta verifies the URL."),
    )
    api_version = models.CharField(
        _("Graph API version"), max_length=8, default="v23.0", validators=[API_VERSION]
    )
    language = models.CharField(_("template language"), max_length=8, default="pt_BR")
    notify_ahead = models.PositiveSmallIntegerField(
        _("warn when this many people are ahead"),
        default=2,
        help_text=_("“N people before you for <service>” is sent once per service at this point."),
    )
    template_approaching = models.CharField(
        _("template: turn approaching"),
        max_length=512,
        default="totem_vez_chegando",
        validators=[TEMPLATE_NAME],
        help_text=_("Body with 2 parameters: {{1}} people ahead, {{2}} service."),
    )
    template_called = models.CharField(
        _("template: your turn"),
        max_length=512,
        default="totem_sua_vez",
        validators=[TEMPLATE_NAME],
        help_text=_("Body with 2 parameters: {{1}} service, {{2}} room."),
    )
    template_feedback = models.CharField(
        _("template: feedback"),
        max_length=512,
        default="totem_avaliacao",
        validators=[TEMPLATE_NAME],
        help_text=_("Body with 2 parameters: {{1}} studio, {{2}} link to the ticket's page."),
    )

    class Meta:
        verbose_name = _("WhatsApp account")
        verbose_name_plural = _("WhatsApp accounts")

    def __str__(self) -> str:
        return str(self.tenant)

    @property
    def configured(self) -> bool:
        return bool(self.enabled and self.phone_number_id and self.access_token)


def sends_whatsapp(tenant: Tenant) -> bool:
    """Whether this tenant sends WhatsApp messages (and so offers the opt-in)."""
    return any(account.configured for account in _read_account(tenant.pk))


@CompiledRead
def _read_account(tenant_id: int) -> models.QuerySet[WhatsAppAccount]:
    # The kiosk's identification asks on each of its requests: built once (one row at most).
    return WhatsAppAccount.objects.filter(tenant_id=tenant_id)


class OptOutVia(models.TextChoices):
    REPLY = "reply", _("reply on WhatsApp")
    PAGE = "page", _("ticket page")
    ERASED = "erased", _("data erased (LGPD)")


class Subscription(models.Model):
    """A customer's opt-in, at the kiosk, to this ticket's WhatsApp messages."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, related_name="whatsapp", verbose_name=_("ticket")
    )
    # Copied from the ticket when the customer opted in: erasing the ticket's phone erases it.
    phone = models.CharField(_("phone"), max_length=11)
    consent_version = models.CharField(_("consent version"), max_length=40)
    opted_in_at = models.DateTimeField(_("opted in at"), default=timezone.now)
    opted_out_at = models.DateTimeField(_("opted out at"), null=True, blank=True)
    opted_out_via = models.CharField(
        _("opted out via"), max_length=8, choices=OptOutVia.choices, blank=True
    )
    # Set once nothing more will be sent (feedback written, or the ticket ended otherwise):
    # the worker's scan then skips the row.
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("WhatsApp opt-in")
        verbose_name_plural = _("WhatsApp opt-ins")
        indexes = [
            # The worker's scan: the live opt-ins of a tenant.
            models.Index(
                fields=["tenant"],
                condition=Q(opted_out_at__isnull=True, finished_at__isnull=True),
                name="whatsapp_live_subscriptions",
            ),
            # An opt-out by reply finds the sender's opt-ins by number.
            models.Index(fields=["tenant", "phone"], name="whatsapp_subscription_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} · {self.phone_masked}"

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def active(self) -> bool:
        return self.opted_out_at is None


class Kind(models.TextChoices):
    APPROACHING = "approaching", _("turn approaching")
    CALLED = "called", _("your turn")
    FEEDBACK = "feedback", _("feedback")


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("accepted by WhatsApp")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("not sent")


class Delivery(models.TextChoices):
    """What Meta's status webhooks said, in the order they normally come."""

    SENT = "sent", _("sent")
    DELIVERED = "delivered", _("delivered")
    READ = "read", _("read")
    FAILED = "failed", _("failed")


# A status webhook may arrive late or twice: a message only moves forward in this order
# (failed can follow sent, as Meta documents for an undeliverable message).
DELIVERY_RANK = {
    "": 0,
    Delivery.SENT: 1,
    Delivery.DELIVERED: 2,
    Delivery.READ: 3,
    Delivery.FAILED: 4,
}


class Message(models.Model):
    """One template message, due, sent or given up. No text, no parameters (LGPD)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="messages"
    )
    line = models.ForeignKey(
        TicketLine, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    # What makes the message once-only: "approaching:<line>", "called:<line>:<call>",
    # "feedback".
    key = models.CharField(max_length=40)
    template = models.CharField(_("template"), max_length=512, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Meta's error code, or a word of ours ("obsolete", "opted-out"): never Meta's text, which
    # may repeat the parameters.
    last_error = models.CharField(_("last error"), max_length=40, blank=True)
    wamid = models.CharField(max_length=128, null=True, blank=True, unique=True)
    delivery = models.CharField(_("delivery"), max_length=10, choices=Delivery.choices, blank=True)
    delivery_at = models.DateTimeField(_("delivery updated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("WhatsApp message")
        verbose_name_plural = _("WhatsApp messages")
        ordering = ["-created_at"]
        constraints = [
            # Each warning once per opt-in, however many workers scan the queue.
            models.UniqueConstraint(fields=["subscription", "key"], name="whatsapp_message_once"),
            models.CheckConstraint(
                condition=Q(status__in=MessageStatus.values), name="whatsapp_message_status_valid"
            ),
        ]
        indexes = [
            # The outbox claim: due pending rows, oldest first.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status=MessageStatus.PENDING),
                name="whatsapp_message_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.subscription.ticket}"


class Feedback(models.Model):
    """A customer's answer after the visit: one per ticket, a 0–10 score per service."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    # One answer per ticket, whatever the double taps: the unique key is the last guard.
    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, related_name="feedback", verbose_name=_("ticket")
    )
    comment = models.TextField(_("comment"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        indexes = [
            # The dashboard reads a tenant's recent answers.
            models.Index(fields=["tenant", "-created_at"], name="feedback_tenant_recent"),
        ]

    def __str__(self) -> str:
        return str(self.ticket)


class FeedbackScore(models.Model):
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="scores")
    # The line says which service, device and operator the score is about.
    line = models.OneToOneField(TicketLine, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField(_("score"))

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        constraints = [
            models.CheckConstraint(condition=Q(score__lte=10), name="feedback_score_0_to_10"),
        ]

    def __str__(self) -> str:
        return str(self.score)


class RemoteJoin(models.Model):
    """A tenant's joining from the phone (QR poster at the door): on or off, paused, limits."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="remote_join")
    enabled = models.BooleanField(_("customers may join from their phone"), default=False)
    paused = models.BooleanField(
        _("paused"), default=False, help_text=_("Stops new joins from the phone for now.")
    )
    pay_at_counter = models.BooleanField(
        _("allow “pay at the front desk”"),
        default=False,
        help_text=_("Otherwise a ticket from the phone is paid by PIX on the phone."),
    )
    max_waiting = models.PositiveSmallIntegerField(
        _("most tickets from phones waiting at once"),
        default=0,
        help_text=_("0: no limit."),
    )
    per_phone_per_day = models.PositiveSmallIntegerField(
        _("tickets per phone number per day"), default=2
    )
    per_ip_per_hour = models.PositiveSmallIntegerField(
        _("tickets per internet address per hour"), default=10
    )

    class Meta:
        verbose_name = _("joining from the phone")
        verbose_name_plural = _("joining from the phone")

    def __str__(self) -> str:
        return str(self.tenant)


class RemoteTicket(models.Model):
    """Marks a ticket bought from the customer's phone rather than at the kiosk."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="remote")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("ticket from the phone")
        verbose_name_plural = _("tickets from the phone")
        indexes = [
            # The limits count a tenant's recent remote tickets.
            models.Index(fields=["tenant", "-created_at"], name="remote_ticket_recent"),
        ]

    def __str__(self) -> str:
        return str(self.ticket)


class Arrival(models.Model):
    """The customer said "estou chegando" on the ticket's page: the panel shows it on the way."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="arrival")
    announced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("customer on the way")
        verbose_name_plural = _("customers on the way")

    def __str__(self) -> str:
        return str(self.ticket)
