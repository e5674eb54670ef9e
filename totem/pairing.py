"""Which device a browser is: one-time pairing codes, and the signed cookie they leave behind.

A browser is paired by typing a code made in admin (`PairingCode`). The code is spent in one
conditional UPDATE, so two browsers typing it at once cannot both win, and the browser gets a
long-lived cookie signed with SECRET_KEY (`django.core.signing`) naming the pairing and its
device. Every request re-reads that pairing: revoking it in admin, soft-deleting the device or
moving it to another kind unpairs the browser at once, and closes its open socket within
seconds (`revoke` tells it; totem/consumers.py re-checks it). One cookie per kind (`totem_kiosk`,
`totem_display`), so one machine may be a tenant's kiosk and show a display in another tab.

The public display pairs the same way:

    from totem.pairing import device_required
    @device_required(Kind.DISPLAY)
    def display(request, slug): ...          # request.tenant, request.device

and its consumer, whose scope carries the cookies (AuthMiddlewareStack / CookieMiddleware):

    device = await database_sync_to_async(paired_device_from_cookies)(
        scope["cookies"], tenant, Kind.DISPLAY)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cache, wraps
from urllib.parse import urlencode

from django.core import signing
from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import MAX_URL_LENGTH, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from equipment.models import Equipment
from tenants import throttle
from tenants.access import get_tenant
from tenants.br import digits
from tenants.models import Tenant
from tickets import events
from totem.models import PAIRABLE_KINDS, PairingCode

SALT = "totem.pairing"
# A kiosk is paired once and then runs for years; revocation, not expiry, ends a pairing.
COOKIE_MAX_AGE = 5 * 365 * 24 * 3600
# Failed codes per browser address and tenant before pairing pauses; the pause.
MAX_FAILURES = 5
FAILURE_WINDOW = 15 * 60
# The device's last_seen_at is written at most this often (a kiosk polls every few seconds).
SEEN_EVERY = timedelta(minutes=1)


class PairingError(Exception):
    """The code was refused; the message is for the screen."""


def cookie_name(kind: str) -> str:
    return f"totem_{kind}"


# --- pairing -----------------------------------------------------------------------------------


def redeem(tenant: Tenant, code: str, *, address: str = "", user_agent: str = "") -> PairingCode:
    """Spend a pairing code of `tenant`; the pairing it becomes, or PairingError.

    Codes of another tenant are unknown here. Failed attempts are counted per browser address:
    past MAX_FAILURES in FAILURE_WINDOW, even a right code is refused for a while.
    """
    if throttle.count("pairing", str(tenant.pk), address) >= MAX_FAILURES:
        raise PairingError(_("Too many wrong codes. Wait a few minutes and try again."))
    code = digits(code)
    now = timezone.now()
    with transaction.atomic():
        pairing = (
            PairingCode.objects.redeemable()
            .for_tenant(tenant)
            .filter(
                code=code, equipment__deleted_at__isnull=True, equipment__kind__in=PAIRABLE_KINDS
            )
            .select_related("equipment")
            .first()
        )
        # The conditional UPDATE is the check: a code spent by a parallel request counts 0 rows.
        spent = pairing is not None and PairingCode.objects.filter(
            pk=pairing.pk, used_at__isnull=True, revoked_at__isnull=True
        ).update(used_at=now, user_agent=user_agent[:200])
    if not spent:
        throttle.hit("pairing", str(tenant.pk), address, window=FAILURE_WINDOW)
        raise PairingError(_("This code is not valid. Check it, or ask for a new one."))
    throttle.reset("pairing", str(tenant.pk), address)
    pairing.used_at = now
    return pairing


def pair_response(response: HttpResponse, request: HttpRequest, pairing: PairingCode) -> None:
    """Give the browser the device cookie for `pairing`."""
    value = signing.dumps({"p": pairing.pk, "e": pairing.equipment_id}, salt=SALT)
    response.set_cookie(
        cookie_name(pairing.equipment.kind),
        value,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


def unpair_response(response: HttpResponse, kind: str) -> None:
    response.delete_cookie(cookie_name(kind), samesite="Lax")


def revoke(pairings: QuerySet[PairingCode]) -> int:
    """Revoke these pairings (those not revoked yet); how many were.

    The browsers that used them are refused from the commit on: their next request goes to
    the pairing screen, and their open sockets are told after commit to re-check and close
    (`events.device_changed`; lost, the sockets' periodic re-check closes them). Admin and
    any command revoke through here. Safe to call twice: a revoked pairing counts once.
    """
    with transaction.atomic():
        # Read first for the devices to tell; the UPDATE stays conditional, so a pairing a
        # parallel request revoked meanwhile is not counted twice.
        rows = list(pairings.filter(revoked_at__isnull=True).values_list("pk", "equipment_id"))
        # A purchase left in the cart goes too: the customer's data it holds has no use now.
        count = PairingCode.objects.filter(
            pk__in=[pk for pk, _ in rows], revoked_at__isnull=True
        ).update(revoked_at=timezone.now(), cart=None)
        events.device_changed(equipment_id for _, equipment_id in rows)
    return count


# --- which device is this browser ----------------------------------------------------------


def paired_device_from_cookies(
    cookies: Mapping[str, str], tenant: Tenant, kind: str
) -> Equipment | None:
    """The live device of `tenant` and `kind` these cookies were paired as, or None.

    Blocking (database): call it from async code through `database_sync_to_async`.
    """
    pairing = _pairing(cookies, kind, tenant=tenant)
    return None if pairing is None else _seen(pairing.equipment)


def _pairing(
    cookies: Mapping[str, str],
    kind: str,
    *,
    tenant: Tenant | None = None,
    slug: str | None = None,
) -> PairingCode | None:
    """The live pairing of the device these cookies name, of `tenant` (or of the tenant whose
    slug is `slug`), or None."""
    raw = cookies.get(cookie_name(kind))
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=SALT)
        pairing_id, equipment_id = int(data["p"]), int(data["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    # One row by its key, the conditions checked here: the same single read as filtering on
    # them in SQL, and the ORM built that query in 2 ms of CPU, on every kiosk and TV request.
    pairing = _read_pairing(pairing_id)
    if pairing is None:
        return None
    device, owner = pairing.equipment, pairing.tenant
    live = (
        pairing.equipment_id == equipment_id
        and pairing.used_at is not None
        and pairing.revoked_at is None
        and device.tenant_id == pairing.tenant_id
        and device.kind == kind
        and device.deleted_at is None
        # Re-read, not taken from `tenant`: an open socket re-checks with the tenant it
        # read when it connected, and must close once that tenant is switched off.
        and owner.is_active
        and owner.deleted_at is None
        and (tenant is None or owner.pk == tenant.pk)
        and (slug is None or owner.slug == slug)
    )
    return pairing if live else None


# The pairing with its device and tenant, as `select_related("equipment", "tenant")` reads them.
_READ_WITH = (PairingCode, Equipment, Tenant)


@cache
def _read_statement(vendor: str) -> tuple[str, tuple]:
    """The SQL of `_read_pairing` and how to turn its row into the three instances: built once
    per process from the models' fields (the ORM compiled the same statement on every request:
    ~1 ms of CPU of each kiosk tap and TV poll). `vendor` keys it to the database in use."""
    q = connection.ops.quote_name
    columns, models = [], []
    for model in _READ_WITH:
        table, fields = model._meta.db_table, model._meta.concrete_fields
        columns += [f"{q(table)}.{q(f.column)}" for f in fields]
        # What the ORM applies to a value read (SQLite's dates, a JSON column, …), by column.
        converters = []
        for i, field in enumerate(fields):
            col = field.get_col(table)
            functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if functions:
                converters.append((i, functions, col))
        models.append((model, [f.attname for f in fields], converters))
    pairing, device, owner = (q(m._meta.db_table) for m in _READ_WITH)
    sql = (
        f"SELECT {', '.join(columns)} FROM {pairing}"
        f" INNER JOIN {device} ON {device}.{q('id')} = {pairing}.{q('equipment_id')}"
        f" INNER JOIN {owner} ON {owner}.{q('id')} = {pairing}.{q('tenant_id')}"
        f" WHERE {pairing}.{q('id')} = %s"
    )
    return sql, tuple(models)


def _read_pairing(pairing_id: int) -> PairingCode | None:
    """The pairing `pairing_id` with its `equipment` and `tenant`, in one query, or None."""
    sql, models = _read_statement(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pairing_id])
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[Model] = []
    start = 0
    for model, attnames, converters in models:
        values = list(row[start : start + len(attnames)])
        start += len(attnames)
        for i, functions, col in converters:
            for convert in functions:
                values[i] = convert(values[i], col, connection)
        instances.append(model.from_db(connection.alias, attnames, values))
    pairing, pairing.equipment, pairing.tenant = instances
    return pairing


def _seen(device: Equipment) -> Equipment:
    now = timezone.now()
    if device.last_seen_at is None or now - device.last_seen_at > SEEN_EVERY:
        Equipment.objects.filter(pk=device.pk).update(last_seen_at=now)
        device.last_seen_at = now
    return device


def paired_device(request: HttpRequest, tenant: Tenant, kind: str) -> Equipment | None:
    """The device of `tenant` and `kind` this browser is paired as, or None."""
    return paired_device_from_cookies(request.COOKIES, tenant, kind)


def pairing_url(tenant: Tenant, next_url: str = "") -> str:
    url = reverse("kiosk_pair", args=[tenant.slug])
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def safe_next(request: HttpRequest, next_url: str, default: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return default


def device_required(kind: str) -> Callable:
    """View decorator for `/t/<slug>/…` device screens (kiosk, display).

    Sets `request.tenant`, `request.device` and `request.pairing` (the kiosk keeps its cart
    on it). An unpaired browser — or one paired with another tenant's device — is sent to
    this tenant's pairing screen and sees nothing else.
    """
    assert kind in PAIRABLE_KINDS, kind

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
            # The tenant comes with the pairing, in its query: the screens' every request
            # (a kiosk tap, a TV's poll) starts here.
            pairing = _pairing(request.COOKIES, kind, slug=slug)
            if pairing is None:
                tenant = get_tenant(slug)
                back = request.get_full_path()
                if len(back) > MAX_URL_LENGTH:
                    # The pairing page returns to no address this long (safe_next), and Django
                    # refuses to redirect through one: come back to the page, without its query.
                    back = request.path
                target = pairing_url(tenant, back)
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
            request.pairing = pairing
            request.tenant = pairing.tenant.for_one_request()
            request.device = _seen(pairing.equipment)
            # Dates and times on the screen in the studio's zone (a package's "até", a slide).
            with timezone.override(request.tenant.tzinfo):
                return view(request, slug, *args, **kwargs)

        return wrapper

    return decorator
