"""Device pairing: how a browser becomes a tenant's kiosk or display.

A manager creates a one-time `PairingCode` for an Equipment (kind kiosk or display) in admin;
typed into the unpaired browser, it is spent and the browser gets a long-lived signed cookie
naming that pairing (`totem/pairing.py`). Revoking the pairing (or deleting the device) turns
the cookie into nothing.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from equipment.models import Equipment, Kind
from tenants.images import SLIDE_SIZE, PictureField
from tenants.models import Tenant, TenantQuerySet

# Kinds of device a browser can be paired as.
PAIRABLE_KINDS = (Kind.KIOSK, Kind.DISPLAY)
CODE_DIGITS = 8
CODE_VALID_MINUTES = 30


def new_code() -> str:
    # Digits only: typed on the kiosk's on-screen keypad. 10^8 codes, valid for minutes, with
    # failed attempts throttled (totem/pairing.py): guessing one is not practical.
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def default_expiry():
    return timezone.now() + timedelta(minutes=CODE_VALID_MINUTES)


class PairingQuerySet(TenantQuerySet):
    def redeemable(self) -> PairingQuerySet:
        return self.filter(
            used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )


class PairingCode(models.Model):
    """A one-time code that pairs one browser with one device; then that pairing itself."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    equipment = models.ForeignKey(
        Equipment,
        on_delete=models.CASCADE,
        related_name="pairings",
        limit_choices_to={"kind__in": PAIRABLE_KINDS, "deleted_at__isnull": True},
        verbose_name=_("device"),
    )
    code = models.CharField(_("code"), max_length=CODE_DIGITS, default=new_code, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expires_at = models.DateTimeField(_("code valid until"), default=default_expiry)
    used_at = models.DateTimeField(_("paired at"), null=True, blank=True)
    revoked_at = models.DateTimeField(
        _("revoked at"),
        null=True,
        blank=True,
        help_text=_("A revoked pairing stops the browser that used it at once."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    user_agent = models.CharField(_("paired browser"), max_length=200, blank=True)
    # The kiosk's purchase in progress (totem/kiosk.py): one pairing is one browser, and its
    # row is read on every request anyway, so the cart comes with it instead of a session
    # row read and written on each tap. Never shown in admin: it holds the customer's data.
    cart = models.JSONField(null=True, blank=True, editable=False)

    objects = PairingQuerySet.as_manager()

    class Meta:
        verbose_name = _("device pairing")
        verbose_name_plural = _("device pairings")
        ordering = ["-created_at"]
        constraints = [
            # A typed code must name one pairing: no two redeemable codes alike in a tenant.
            models.UniqueConstraint(
                fields=["tenant", "code"],
                condition=Q(used_at__isnull=True, revoked_at__isnull=True),
                name="pairing_code_open_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.equipment} · {self.code}"

    @property
    def is_active(self) -> bool:
        return self.used_at is not None and self.revoked_at is None

    def keep_cart(self) -> None:
        """Write `cart`, and nothing else of the row (the kiosk, once per request that changed
        it). A statement of its own: the ORM's UPDATE cost more CPU to build than to run."""
        field, q = PairingCode._meta.get_field("cart"), connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {q(PairingCode._meta.db_table)} SET {q(field.column)} = %s"
                f" WHERE {q('id')} = %s",
                [field.get_db_prep_save(self.cart, connection), self.pk],
            )

    def clean(self) -> None:
        if self.equipment_id:
            if self.equipment.kind not in PAIRABLE_KINDS:
                raise ValidationError({"equipment": _("Only a kiosk or a display can be paired.")})
            if self.tenant_id and self.equipment.tenant_id != self.tenant_id:
                raise ValidationError({"equipment": _("Choose a device of this company/branch.")})


class DisplaySlide(models.Model):
    """A message or picture the TV shows between calls (signage): a promotion, the house rules.

    Shown on the displays chosen (every display of the tenant when none is), in `order`,
    while no call is on the stage; a call always takes the stage back at once.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(_("title"), max_length=80, blank=True)
    text = models.TextField(_("text"), max_length=280, blank=True)
    image = PictureField(
        _("image"),
        upload_to="display/",
        blank=True,
        max_size=SLIDE_SIZE,
        help_text=_("JPEG, PNG or WebP, up to 5 MB; 1920×1080 fills a landscape TV."),
    )
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    active = models.BooleanField(_("active"), default=True)
    displays = models.ManyToManyField(
        Equipment,
        blank=True,
        related_name="slides",
        limit_choices_to={"kind": Kind.DISPLAY, "deleted_at__isnull": True},
        verbose_name=_("displays"),
        help_text=_("Leave empty to show it on every display."),
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = _("display slide")
        verbose_name_plural = _("display slides")
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title or self.text[:40] or self.image.name

    def clean(self) -> None:
        if not (self.title.strip() or self.text.strip() or self.image):
            raise ValidationError(_("Give the slide a title, a text or an image."))
