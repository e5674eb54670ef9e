"""The kiosk (totem): welcome → services → extras → identification → summary → payment → ticket.

One purchase is one *cart* kept server-side on the browser's pairing (the row every request
reads to know the device; `PairingCode.cart`), written once at the end of a request that
changed it: the chosen services and extras, the customer's data, and — once created — the
ticket's id. The cart's
`key` is the ticket's idempotency key, so a double tap, a resent form or two racing requests
all end at the same ticket. Once the cart holds a ticket, every earlier step sends the
browser to that ticket's payment or ticket screen: the back button cannot buy again.

Pages are full pages. Without JavaScript a POST redirects to the next screen (PRG). With it,
each tap is one request: the body is boosted (hx-boost), and `in_place` answers the POST —
or a link to a screen that sends on to another — with the next screen itself and its URL
for the address bar (HX-Push-Url), so back and reload work. Smaller HTMX swaps stay partial:
toggling a service, changing an extra's quantity, the every-15-s refresh of waits and stock,
the payment status.
Every view runs inside `kiosk_errors`, which turns anything unexpected into the kiosk's
friendly error screen that returns to the welcome screen by itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods

from customers.identity import find as find_customer
from equipment.models import Kind, PrinterSettings
from fiscal.issuing import issues_nfse
from messaging import optin
from messaging.models import sends_whatsapp
from payments import demo
from payments.models import Method, SessionStatus
from payments.providers import ProviderError
from payments.providers.mercadopago import is_demo_api
from payments.receipts import receipt_url, receipts_of
from payments.sessions import (
    PaymentError,
    abandon,
    issue_free_ticket,
    refresh_status,
    session_for_ticket,
    settings_for,
    start_payment,
)
from tenants import throttle
from tenants.access import get_tenant
from tenants.br import format_cpf
from tenants.compiled import CompiledRead
from tenants.models import Tenant
from tickets import credits, queue, waivers
from tickets.issuing import MAX_EXTRA_QUANTITY, create_ticket, sellable_ids
from tickets.models import (
    Extra,
    Package,
    Priority,
    QuestionnaireVersion,
    Service,
    Ticket,
    TicketStatus,
    WaiverOutcome,
)
from tickets.printing import status_url
from totem import consent
from totem.consumers import ticket_socket_path
from totem.forms import IdentificationForm, PairingForm, WhatsAppOptInForm, declaration_of
from totem.pairing import (
    PairingError,
    device_required,
    pair_response,
    paired_device,
    redeem,
    safe_next,
)

log = logging.getLogger(__name__)
T, S = TicketStatus, SessionStatus


def idle_settings(screen: str = "step") -> dict[str, int]:
    """Seconds of inactivity before the warning, and of the warning's countdown.

    Generous by default: a slow reader gets 2 minutes, then 30 s of warning. While a PIX or
    card payment waits, the customer is busy with a phone or the card machine, not with this
    screen: 5 minutes (the payment's own expiry still ends it). The final screens (ticket,
    cash) go back sooner and cancel nothing. A screen showing personal data ("personal": the
    summary, the ticket's "All set, Maria!") is cleared KIOSK_PERSONAL_IDLE_SECONDS after the
    last touch, its warning included. Tests shorten them through settings.
    """
    personal = settings.KIOSK_PERSONAL_IDLE_SECONDS
    if screen == "final":
        return {"idle_seconds": settings.KIOSK_DONE_SECONDS, "warning_seconds": 0}
    if screen == "final-personal":
        return {"idle_seconds": min(settings.KIOSK_DONE_SECONDS, personal), "warning_seconds": 0}
    if screen == "personal":
        warning = settings.KIOSK_PERSONAL_WARNING_SECONDS
        return {"idle_seconds": personal - warning, "warning_seconds": warning}
    warning = settings.KIOSK_IDLE_WARNING_SECONDS
    if screen == "payment":
        return {
            "idle_seconds": settings.KIOSK_PAYMENT_IDLE_SECONDS,
            "warning_seconds": warning,
        }
    return {
        "idle_seconds": settings.KIOSK_IDLE_SECONDS,
        "warning_seconds": warning,
    }


# --- errors ---------------------------------------------------------------------------------


def kiosk_errors(view: Callable) -> Callable:
    """Anything unexpected becomes the friendly error screen (HTTP 500), never a stack trace.
    The database being unreachable is not unexpected: DatabaseUnavailableMiddleware answers
    it (503, retried by the screen itself, logged once per outage)."""

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, slug, *args, **kwargs)
        except (Http404, PermissionDenied, OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("kiosk %s: %s failed", slug, request.path)
            return error_screen(request, slug, status=500)

    return wrapper


def swaps_part(request: HttpRequest) -> bool:
    """Whether htmx asked for a part of the screen (a toggle, a refresh), not a whole one."""
    return bool(request.htmx) and not request.htmx.boosted


def error_screen(request: HttpRequest, slug: str, *, status: int) -> HttpResponse:
    """The friendly error screen with `status`; for an HTMX tap, which swaps nothing on an
    error status, a redirect of the whole screen to it."""
    if request.htmx:
        return _redirect(request, reverse("kiosk_error", args=[slug]))
    return render(request, "kiosk/error.html", _error_context(slug), status=status)


def _error_context(slug: str) -> dict:
    return {
        "home_url": reverse("kiosk_welcome", args=[slug]),
        "return_seconds": settings.KIOSK_ERROR_SECONDS,
    }


@never_cache
@require_GET
def error(request: HttpRequest, slug: str) -> HttpResponse:
    """The friendly error screen on its own (htmx requests are sent here). Needs no database."""
    return render(request, "kiosk/error.html", _error_context(slug))


# How often a kiosk's payment screen may ask the provider about one payment (see
# payment_status). The screen re-reads the database at once when its ticket's socket says the
# payment moved, and every KIOSK_PAYMENT_POLL_SECONDS whatever the socket says: the fallback
# when the socket is down, and the path on which a webhook that never came is looked up.
PROVIDER_CHECK_SECONDS = 10


def per_device_limit(view: Callable) -> Callable:
    """At most KIOSK_REQUESTS_PER_MINUTE per paired kiosk: far above a customer's taps and the
    screens' polling, low enough that a stuck script or a hand on the glass cannot flood the
    server. Over the limit, 429 and the friendly error screen, which comes back by itself."""

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        limit = settings.KIOSK_REQUESTS_PER_MINUTE
        if not throttle.allow("kiosk", str(request.device.pk), limit=limit, window=60):
            log.warning("kiosk %s (device %s) over %s requests/min", slug, request.device.pk, limit)
            return error_screen(request, slug, status=429)
        return view(request, slug, *args, **kwargs)

    return wrapper


# Redirects followed on the server for one tap: a step may send on to a screen that sends on
# again (extras with none on sale → identification; packages with no offer → summary).
MAX_IN_PLACE = 4


def in_place(view: Callable) -> Callable:
    """One request per tap: for a whole-screen htmx request (hx-boost), a redirect to another
    kiosk screen is answered with that screen, rendered here, and its URL to push.

    Generic on purpose: any view under `kiosk_view` that redirects gets it, so a new step
    needs nothing of its own. The screen rendered is the view behind the kiosk's checks
    (`screen`), as a GET, for the tenant and device this request was already checked for;
    the rate limit counts the tap once. A plain POST keeps its 303-style redirect (PRG).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        response = view(request, slug, *args, **kwargs)
        if not (request.htmx and request.htmx.boosted):
            return response
        pushed = None
        for _hop in range(MAX_IN_PLACE):
            if response.status_code not in (301, 302, 303):
                break
            url = response["Location"]
            try:
                match = resolve(urlsplit(url).path)
            except Resolver404:
                break
            screen = getattr(match.func, "screen", None)
            if screen is None or match.kwargs.get("slug") != slug:
                break  # pairing, another tenant: the browser follows it as a page
            # What the redirect would have made the browser do: a GET of the next screen.
            request.method = "GET"
            request.POST = QueryDict()
            request.__dict__.pop("cart", None)
            response, pushed = screen(request, *match.args, **match.kwargs), url
        if pushed is not None:
            response["HX-Push-Url"] = pushed
        return response

    return wrapper


def kiosk_view(*methods: str) -> Callable:
    """Errors caught, never cached (back restores nothing stale), paired kiosks only, the
    cart written once (`keeps_cart`), each kept to its request rate, and one request per tap
    (`in_place`)."""

    def decorator(view: Callable) -> Callable:
        wrapped = kiosk_errors(
            never_cache(
                require_http_methods(list(methods))(
                    device_required(Kind.KIOSK)(keeps_cart(in_place(per_device_limit(view))))
                )
            )
        )
        # The screen itself, for `in_place` to render after another view's checks.
        wrapped.screen = view
        return wrapped

    return decorator


# --- the cart -------------------------------------------------------------------------------


def get_cart(request: HttpRequest) -> dict | None:
    return request.pairing.cart


def save_cart(request: HttpRequest, cart: dict | None) -> None:
    """Keep `cart` (None: no purchase) for this browser; written when the request ends
    (`keeps_cart`), once however many steps changed it."""
    request.pairing.cart = cart
    request.cart_changed = True


def new_cart(request: HttpRequest) -> dict:
    cart = {
        "key": uuid.uuid4().hex,
        "started_at": timezone.now().isoformat(),
        "services": [],
        "extras": {},
        "customer": None,
        "ticket": None,
    }
    save_cart(request, cart)
    return cart


def clear_cart(request: HttpRequest) -> None:
    if get_cart(request) is not None:
        save_cart(request, None)


def keeps_cart(view: Callable) -> Callable:
    """Write the cart once, after the view (and the screens `in_place` renders after it), if
    it changed. A view that raises keeps the cart it found, as a session would (not saved on
    an error)."""

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        request.cart_changed = False
        response = view(request, slug, *args, **kwargs)
        if request.cart_changed:
            request.pairing.keep_cart()
        return response

    return wrapper


def _url(request: HttpRequest, name: str) -> str:
    return reverse(name, args=[request.tenant.slug])


def _cart_ticket(request: HttpRequest, cart: dict) -> Ticket | None:
    if not cart or not cart.get("ticket"):
        return None
    ticket = next(iter(_read_ticket(request.tenant.pk, int(cart["ticket"]))), None)
    if ticket is not None:
        ticket.tenant = request.tenant  # its status URL and payment read it: spares a query
    return ticket


@CompiledRead
def _read_ticket(tenant_id: int, ticket_id: int) -> QuerySet[Ticket]:
    # The purchase's ticket, read by leave and the welcome, each payment screen and every
    # poll of its status: the statement is built once per process.
    return Ticket.objects.filter(tenant_id=tenant_id, pk=ticket_id)


def _where_ticket_is(request: HttpRequest, ticket: Ticket | None) -> HttpResponse:
    """The screen of a purchase that already has its ticket."""
    if ticket is None or ticket.status == T.CANCELLED:
        clear_cart(request)
        if ticket is not None:
            messages.info(request, _("That purchase was cancelled. You can start again."))
        return redirect(_url(request, "kiosk_welcome"))
    if ticket.status == T.PENDING_PAYMENT:
        return redirect(_url(request, "kiosk_payment"))
    return redirect(_url(request, "kiosk_ticket"))


def purchase_step(view: Callable) -> Callable:
    """For the steps before the ticket exists: needs a cart, and no ticket in it yet."""

    @wraps(view)
    def wrapper(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        cart = get_cart(request)
        if cart is None:
            return _redirect(request, _url(request, "kiosk_welcome"))
        if cart.get("ticket"):
            return _where_ticket_is(request, _cart_ticket(request, cart))
        request.cart = cart
        return view(request, slug, *args, **kwargs)

    return wrapper


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """A redirect that also moves the whole screen when htmx asked for a part of it (a whole
    screen's redirect is followed in place)."""
    if swaps_part(request):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


# --- what can be sold now -------------------------------------------------------------------


@dataclass
class ServiceOption:
    service: Service
    available: bool
    wait_minutes: int
    waiting: int
    selected: bool = False
    # ok / warning / critical by the tenant's thresholds, as the panel colours a wait.
    wait_level: str = "ok"


def service_options(tenant: Tenant, selected: list[int] | None = None) -> list[ServiceOption]:
    """The tenant's sellable services with their current wait; unavailable ones marked.

    A service is sold only while the tenant is open and an online device can run it today.
    Read once per request (`Tenant.once`): the start and a toggle check the tap against the
    list they then show, in the same request.
    """
    chosen = set(selected or [])
    return [
        replace(option, selected=option.service.pk in chosen)
        for option in tenant.once("service_options", lambda: _read_service_options(tenant))
    ]


def _read_service_options(tenant: Tenant) -> list[ServiceOption]:
    # Two queries: the services with their queue's length counted in the same statement (as
    # the TV counts it), then their online devices (`queue.turns`). The panel's other counts
    # (`service_counts`: in service, today's average wait) are not shown here.
    services = _sellable_with_queues(tenant.pk)
    is_open = tenant.is_open()
    turns = queue.turns(tenant, services)
    options = []
    for service in services:
        devices, round_seconds = turns[service.pk]
        wait = queue.estimate_wait_minutes(service.waiting, devices, round_seconds)
        options.append(
            ServiceOption(
                service=service,
                available=is_open and devices > 0,
                wait_minutes=wait,
                waiting=service.waiting,
                wait_level=queue.wait_level(tenant, wait),
            )
        )
    return options


@CompiledRead
def _sellable_with_queues(tenant_id: int) -> QuerySet[Service]:
    # On every start and toggle: its statement is built once per process.
    return (
        Service.objects.sellable().filter(tenant_id=tenant_id).annotate(waiting=queue.waiting_now())
    )


def _available_ids(tenant: Tenant) -> set[int]:
    """What a tap may choose: the services the list shows available (`sellable_ids` agrees)."""
    return {option.service.pk for option in service_options(tenant) if option.available}


def _extras(tenant: Tenant) -> list[Extra]:
    # Once per request: "none on sale" sends the extras step on to identification, whose
    # screen, rendered in the same request, asks again where "back" goes.
    return tenant.once("sellable_extras", lambda: _read_extras(tenant.pk))


@CompiledRead
def _read_extras(tenant_id: int) -> QuerySet[Extra]:
    # Asked by the extras step and by identification (where "back" goes): built once.
    return Extra.objects.sellable().filter(tenant_id=tenant_id)


def _payment_methods(tenant: Tenant) -> list[tuple[str, str]]:
    enabled = settings_for(tenant).enabled_methods()
    return [(m, Method(m).label) for m in (Method.PIX, Method.CARD, Method.CASH) if m in enabled]


@dataclass
class SummaryRow:
    """A chosen service on the summary: its price, or the package session that pays it and
    the sessions left after it."""

    service: Service
    price: Decimal
    session_left: int | None = None
    # An unlimited plan's daily limit: then session_left counts today only.
    per_day: int | None = None


@CompiledRead
def _cart_services(tenant_id: int, *ids: int) -> QuerySet[Service]:
    # The summary's, shown twice a sale: one statement per number of services.
    return Service.objects.filter(tenant_id=tenant_id, pk__in=ids)


def _cart_items(tenant: Tenant, cart: dict) -> tuple[list, list, list, Decimal]:
    """The summary's service rows, extras and packages bought, and the total: the prices
    create_ticket will charge (a service paid with a package session costs nothing)."""
    services = _cart_services(tenant.pk, *cart["services"]) if cart["services"] else []
    services.sort(key=lambda s: (s.display_order, s.name))
    wanted = {int(k): v for k, v in cart["extras"].items() if v > 0}
    # Most carts hold neither: an empty `pk__in` runs no query, but the ORM still spent
    # ~0.3 ms building each (twice a sale: the summary, then the paying tap).
    extras = [
        (extra, wanted[extra.pk], extra.price * wanted[extra.pk])
        for extra in (Extra.objects.for_tenant(tenant).filter(pk__in=wanted) if wanted else [])
    ]
    packages = (
        list(
            Package.objects.sellable()
            .for_tenant(tenant)
            .filter(pk__in=cart["buy_packages"])
            .prefetch_related("items")
        )
        if cart.get("buy_packages")
        else []
    )
    # A new unlimited plan's first day: its daily limit is what is left today.
    new_sessions = {
        i.service_id: (i.sessions or i.per_day, i.per_day if i.sessions is None else None)
        for p in packages
        for i in p.items.all()
    }
    customer = find_customer(tenant, (cart.get("customer") or {}).get("cpf", ""))
    held = {b.service.pk: b for b in credits.balances(customer)}
    rows = []
    for service in services:
        if service.pk in cart.get("use_sessions", []) and service.pk in held:
            balance = held[service.pk]
            rows.append(
                SummaryRow(service, Decimal("0"), max(balance.left - 1, 0), balance.per_day)
            )
        elif service.pk in new_sessions:
            sessions, per_day = new_sessions[service.pk]
            rows.append(SummaryRow(service, Decimal("0"), sessions - 1, per_day))
        else:
            rows.append(SummaryRow(service, service.price))
    total = (
        sum((r.price for r in rows), Decimal("0"))
        + sum((sub for _e, _q, sub in extras), Decimal("0"))
        + sum((p.price for p in packages), Decimal("0"))
    )
    return rows, extras, packages, total


def _base_context(request: HttpRequest, *, screen: str = "step", **extra) -> dict:
    return {
        "tenant": request.tenant,
        "device": request.device,
        "cart": getattr(request, "cart", None) or get_cart(request),
        **idle_settings(screen),
        **extra,
    }


# --- pairing --------------------------------------------------------------------------------


@kiosk_errors
@never_cache
@require_http_methods(["GET", "POST"])
def pair(request: HttpRequest, slug: str) -> HttpResponse:
    """Type a one-time code from the admin; this browser becomes that kiosk (or display)."""
    tenant = get_tenant(slug)
    default = reverse("kiosk_welcome", args=[slug])
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next", ""), default)
    form = PairingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pairing = redeem(
                tenant,
                form.cleaned_data["code"],
                address=request.META.get("REMOTE_ADDR", ""),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except PairingError as refused:
            form.add_error("code", str(refused))
        else:
            if pairing.equipment.kind == Kind.DISPLAY and next_url == default:
                next_url = _display_url(slug)
            response = redirect(next_url)
            pair_response(response, request, pairing)
            return response
    return render(
        request,
        "kiosk/pair.html",
        {
            "tenant": tenant,
            "form": form,
            "next": next_url,
            "already": paired_device(request, tenant, Kind.KIOSK),
        },
    )


def _display_url(slug: str) -> str:
    # The display's page belongs to the real-time screens (totem/urls.py, name "display").
    try:
        return reverse("display", args=[slug])
    except NoReverseMatch:
        return "/"


# --- the screens ----------------------------------------------------------------------------


@kiosk_view("GET")
def welcome(request: HttpRequest, slug: str) -> HttpResponse:
    """“Toque para começar”, or why nothing can be sold now."""
    cart = get_cart(request)
    if cart and cart.get("ticket"):
        ticket = _cart_ticket(request, cart)
        if ticket is not None and ticket.status == T.PENDING_PAYMENT:
            session = session_for_ticket(ticket)
            if not (session and session.method == Method.CASH):
                return redirect(_url(request, "kiosk_payment"))
        # A finished purchase left behind (the customer walked off): start clean.
        clear_cart(request)
    elif cart:
        clear_cart(request)
    tenant = request.tenant
    is_open = tenant.is_open()
    sellable = is_open and bool(sellable_ids(tenant))
    hours = tenant.hours() if not is_open else []
    return render(
        request,
        "kiosk/welcome.html",
        _base_context(
            request, cart=None, is_open=is_open, sellable=sellable, hours=hours, welcome=True
        ),
    )


@kiosk_view("POST")
def start(request: HttpRequest, slug: str) -> HttpResponse:
    # The service list answers this tap (in_place): its options serve the check too.
    if not _available_ids(request.tenant):
        return redirect(_url(request, "kiosk_welcome"))
    new_cart(request)
    return redirect(_url(request, "kiosk_services"))


@kiosk_view("GET", "POST")
@purchase_step
def services(request: HttpRequest, slug: str) -> HttpResponse:
    """Pick one or more services. A toggle (HTMX or plain POST) updates the cart at once."""
    cart = request.cart
    if request.method == "POST":
        chosen = list(cart["services"])
        try:
            toggled = int(request.POST.get("toggle", ""))
        except ValueError:
            toggled = None
        if toggled is not None:
            if toggled in chosen:
                chosen.remove(toggled)
            elif toggled in _available_ids(request.tenant):
                chosen.append(toggled)
            else:
                messages.error(request, _("This service cannot be sold right now."))
            cart["services"] = chosen
            save_cart(request, cart)
        if not swaps_part(request):
            return redirect(_url(request, "kiosk_services"))
    options = service_options(request.tenant, cart["services"])
    # A chosen service that stopped being sellable (device offline, closing time) drops out.
    available = {o.service.pk for o in options if o.available}
    if any(pk not in available for pk in cart["services"]):
        cart["services"] = [pk for pk in cart["services"] if pk in available]
        save_cart(request, cart)
        for option in options:
            option.selected = option.service.pk in cart["services"]
    context = _base_context(request, options=options, step=1)
    if swaps_part(request):
        return render(request, "kiosk/services.html#choices", context)
    return render(request, "kiosk/services.html", context)


def _extra_rows(tenant: Tenant, cart: dict, errors: dict[int, str]) -> list[dict]:
    rows = []
    for extra in _extras(tenant):
        rows.append(
            {
                "extra": extra,
                "quantity": cart["extras"].get(str(extra.pk), 0),
                "sold_out": extra.stock == 0,
                "error": errors.get(extra.pk, ""),
            }
        )
    return rows


def _stock_left(stock: int) -> str:
    """What is left of an extra, said as a sentence: "Só resta 1." but "Só restam 2."."""
    if stock == 0:
        return _("Sold out.")
    return ngettext("Only %(n)s left.", "Only %(n)s left.", stock) % {"n": stock}


def _stock_errors(tenant: Tenant, cart: dict) -> dict[int, str]:
    """Extras in the cart beyond what is left now, with the message shown beside each."""
    errors = {}
    for extra in Extra.objects.for_tenant(tenant).filter(pk__in=[int(k) for k in cart["extras"]]):
        wanted = cart["extras"].get(str(extra.pk), 0)
        if extra.stock is not None and wanted > extra.stock:
            errors[extra.pk] = _stock_left(extra.stock)
    return errors


@kiosk_view("GET", "POST")
@purchase_step
def extras(request: HttpRequest, slug: str) -> HttpResponse:
    """Optional extras with price and what is left; sold-out ones cannot be added."""
    cart, tenant = request.cart, request.tenant
    if not cart["services"]:
        messages.error(request, _("Choose at least one service."))
        return _redirect(request, _url(request, "kiosk_services"))
    errors: dict[int, str] = {}
    if request.method == "POST":
        if "next" in request.POST:
            errors = _stock_errors(tenant, cart)
            if not errors:
                return redirect(_url(request, "kiosk_identify"))
        else:
            errors = _change_extra(request, cart)
            if not swaps_part(request) and not errors:
                return redirect(_url(request, "kiosk_extras"))
    elif not _extras(tenant):
        # Nothing to offer: straight on (and back from identification comes to services).
        return redirect(_url(request, "kiosk_identify"))
    else:
        errors = _stock_errors(tenant, cart)
    context = _base_context(request, rows=_extra_rows(tenant, cart, errors), step=2)
    if swaps_part(request):
        return render(request, "kiosk/extras.html#choices", context)
    return render(request, "kiosk/extras.html", context)


def _change_extra(request: HttpRequest, cart: dict) -> dict[int, str]:
    try:
        extra_id = int(request.POST.get("extra", ""))
        change = {"add": 1, "remove": -1}[request.POST.get("change", "")]
    except (ValueError, KeyError):
        return {}
    extra = Extra.objects.sellable().for_tenant(request.tenant).filter(pk=extra_id).first()
    if extra is None:
        return {}
    current = cart["extras"].get(str(extra_id), 0)
    wanted = max(0, current + change)
    if change > 0 and extra.stock is not None and wanted > extra.stock:
        # Sold while the customer looked: say so beside it, keep what is still possible.
        kept = min(current, extra.stock)
        if kept:
            cart["extras"][str(extra_id)] = kept
        else:
            cart["extras"].pop(str(extra_id), None)
        save_cart(request, cart)
        return {extra.pk: _stock_left(extra.stock)}
    if wanted > MAX_EXTRA_QUANTITY:
        return {extra.pk: _("At most %(n)s of each.") % {"n": MAX_EXTRA_QUANTITY}}
    if wanted:
        cart["extras"][str(extra_id)] = wanted
    else:
        cart["extras"].pop(str(extra_id), None)
    save_cart(request, cart)
    return {}


@sensitive_post_parameters("customer_cpf", "customer_phone")
@kiosk_view("GET", "POST")
@purchase_step
def identify(request: HttpRequest, slug: str) -> HttpResponse:
    """Name to be called by, optional CPF and phone, priority declaration, LGPD consent."""
    cart = request.cart
    if not cart["services"]:
        messages.error(request, _("Choose at least one service."))
        return redirect(_url(request, "kiosk_services"))
    # The opt-in is offered only by a tenant that sends WhatsApp (messaging/optin.py).
    offers_whatsapp = sends_whatsapp(request.tenant)
    if request.method == "POST":
        form = IdentificationForm(request.POST)
        form.is_valid()  # the phone, if valid, decides whether a yes to WhatsApp may stand
        phone = form.cleaned_data.get("customer_phone", "")
        whatsapp = WhatsAppOptInForm(request.POST, phone=phone) if offers_whatsapp else None
        if form.is_valid() and (whatsapp is None or whatsapp.is_valid()):
            data = form.cleaned_data
            previous_cpf = (cart.get("customer") or {}).get("cpf")
            # Only the class is kept: the declared reason is health data (LGPD art. 11).
            cart["customer"] = {
                "customer_name": data["customer_name"],
                "cpf": data["customer_cpf"],
                "cpf_on_invoice": data["cpf_on_invoice"],
                "phone": data["customer_phone"],
                "priority": form.priority_class,
                "consent_version": consent.CONSENT_VERSION,
                "whatsapp": bool(whatsapp and whatsapp.cleaned_data["whatsapp"]),
            }
            # Package choices are made again for this identity (another CPF, other
            # sessions); so are the health forms signed, unless the CPF is the same.
            signed = cart.get("waivers", []) if data["customer_cpf"] == previous_cpf else []
            cart.update(
                use_sessions=[],
                buy_packages=[],
                offered=False,
                packages_chosen=False,
                waivers=signed,
            )
            save_cart(request, cart)
            return _after_identity(request, cart)
    else:
        customer = cart.get("customer") or {}
        form = IdentificationForm(initial=_identify_initial(customer))
        whatsapp = (
            WhatsAppOptInForm(initial={"whatsapp": customer.get("whatsapp", False)})
            if offers_whatsapp
            else None
        )
    back = "kiosk_extras" if _extras(request.tenant) else "kiosk_services"
    return render(
        request,
        "kiosk/identify.html",
        _base_context(
            request,
            form=form,
            step=3,
            # kiosk.js switches to these once a field holds something typed.
            personal_idle=idle_settings("personal"),
            back_url=_url(request, back),
            consent=consent,
            whatsapp=whatsapp,
            whatsapp_consent=optin,
            ask_cpf_on_invoice=issues_nfse(request.tenant),
            declared_priority=(cart.get("customer") or {}).get("priority") == Priority.PRIORITY,
        ),
    )


def _identify_initial(customer: dict | None) -> dict:
    if not customer:
        return {}
    return {
        "customer_name": customer["customer_name"],
        "customer_cpf": format_cpf(customer["cpf"]),
        "cpf_on_invoice": customer.get("cpf_on_invoice", False),
        "customer_phone": customer["phone"],
        # The reason was never kept: only a class one declaration alone gives is shown again.
        "priority": declaration_of(customer["priority"]),
        "consent": True,
    }


def _after_identity(request: HttpRequest, cart: dict) -> HttpResponse:
    """The step after the customer's details: the health forms still to sign, then the
    package offers, then the summary."""
    if waivers.to_sign(
        request.tenant,
        cart["services"],
        cpf=cart["customer"]["cpf"],
        signed=cart.get("waivers", []),
    ):
        return redirect(_url(request, "kiosk_waiver"))
    if _package_offers(request.tenant, cart) or _other_packages(request.tenant, cart):
        cart["offered"] = True
        save_cart(request, cart)
        return redirect(_url(request, "kiosk_packages"))
    cart["offered"] = False
    save_cart(request, cart)
    return redirect(_url(request, "kiosk_summary"))


# The answers are health data (LGPD art. 11): never in an error report either.
@sensitive_post_parameters()
@kiosk_view("GET", "POST")
@purchase_step
def waiver(request: HttpRequest, slug: str) -> HttpResponse:
    """The health form of a chosen service (one at a time): yes/no questions, the name typed
    and "Concordo". Skipped for a customer with a valid waiver on file (by CPF).

    The answers go from the POST to `waivers.sign`, which keeps only the outcome; neither the
    cart nor the page keeps them. An answer that blocks takes the service out of the cart
    and says only "fale com a equipe"; the rest of the cart goes on.
    """
    cart, tenant = request.cart, request.tenant
    if not cart.get("customer"):
        return redirect(_url(request, "kiosk_identify"))
    cpf = cart["customer"]["cpf"]
    pending = waivers.to_sign(tenant, cart["services"], cpf=cpf, signed=cart.get("waivers", []))
    if not pending:
        return _after_identity(request, cart)
    # With the questionnaire and service the screen names (`to_sign` reads neither).
    version = QuestionnaireVersion.objects.select_related("questionnaire__service").get(
        pk=pending[0].pk
    )
    errors = {}
    if request.method == "POST":
        if request.POST.get("version") != str(version.pk):
            # The questions changed meanwhile (or an old page was sent): ask this version.
            errors["form"] = _("The questions were updated. Please answer them again.")
        else:
            answers = [request.POST.get(f"answer-{i}") for i in range(len(version.questions))]
            try:
                if any(a not in ("yes", "no") for a in answers):
                    raise waivers.WaiverError(_("Answer every question."))
                signed = waivers.sign(
                    tenant,
                    version,
                    [a == "yes" for a in answers],
                    signed_name=request.POST.get("signed_name", ""),
                    cpf=cpf,
                )
            except waivers.WaiverError as refused:
                errors["form"] = str(refused)
            else:
                cart.setdefault("waivers", []).append(signed.pk)
                service = version.questionnaire.service
                if signed.outcome == WaiverOutcome.NEEDS_STAFF:
                    cart["services"] = [pk for pk in cart["services"] if pk != service.pk]
                    # Only this: why it blocked is the customer's to tell the team.
                    refusal = _("%(service)s: please talk to the team.")
                    messages.info(request, refusal % {"service": service.name})
                save_cart(request, cart)
                if not cart["services"]:
                    return redirect(_url(request, "kiosk_services"))
                return redirect(_url(request, "kiosk_waiver"))
    return render(
        request,
        "kiosk/waiver.html",
        _base_context(
            request,
            version=version,
            service=version.questionnaire.service,
            # Checked again only when the same page comes back with an error: from the POST
            # in hand, never from anything stored.
            questions=[
                (i, q["text"], request.POST.get(f"answer-{i}") if errors else None)
                for i, q in enumerate(version.questions)
            ],
            signed_name=request.POST.get("signed_name", "") if errors else "",
            errors=errors,
            step=3,
            # Time to read the questions; once a name is typed, the shorter personal idle.
            personal_idle=idle_settings("personal"),
            back_url=_url(request, "kiosk_identify"),
        ),
    )


@dataclass
class PackageOffer:
    """What the package step offers for one chosen service: a session the customer has
    (`left`), or the packages on sale that cover it."""

    service: Service
    left: int
    on_sale: list[Package]
    choice: str
    per_day: int | None = None  # an unlimited plan's daily limit: `left` counts today


def _package_offers(tenant: Tenant, cart: dict) -> list[PackageOffer]:
    """Offers for the chosen services of a customer who gave a CPF; none without one."""
    cpf = (cart.get("customer") or {}).get("cpf", "")
    if not cpf:
        return []
    customer = find_customer(tenant, cpf)
    held = {b.service.pk: b for b in credits.balances(customer)}
    left = {pk: b.left for pk, b in held.items()}
    services = Service.objects.for_tenant(tenant).filter(pk__in=cart["services"])
    offers = []
    for service in services.order_by("display_order", "name"):
        on_sale = [] if left.get(service.pk) else credits.packages_on_sale(tenant, service.pk)
        for package in on_sale:
            package.choice = f"package-{package.pk}"  # the radio's value on the step
        if not left.get(service.pk) and not on_sale:
            continue
        if left.get(service.pk):
            # Using a session is the default until the customer has chosen on this step.
            used = service.pk in cart.get("use_sessions", [])
            choice = "session" if used or not cart.get("packages_chosen") else "pay"
        else:
            bought = [p for p in on_sale if p.pk in cart.get("buy_packages", [])]
            choice = f"package-{bought[0].pk}" if bought else "pay"
        per_day = held[service.pk].per_day if service.pk in held else None
        offers.append(PackageOffer(service, left.get(service.pk, 0), on_sale, choice, per_day))
    return offers


def _other_packages(tenant: Tenant, cart: dict) -> list[Package]:
    """Packages on sale for none of the chosen services, for a customer who gave a CPF:
    bought today without using a session today (their services are not in this ticket)."""
    if not (cart.get("customer") or {}).get("cpf"):
        return []
    return list(
        Package.objects.sellable()
        .for_tenant(tenant)
        .exclude(items__service_id__in=cart["services"])
        .order_by("price", "name")
    )


@sensitive_post_parameters("customer_cpf")
@kiosk_view("GET", "POST")
@purchase_step
def packages(request: HttpRequest, slug: str) -> HttpResponse:
    """For a customer who gave a CPF: use a session of a package they have ("usar 1 sessão do
    pacote, restam N"), or buy a package that covers a chosen service and use it today, or
    buy one for other services without using it today.
    Greets a returning customer by first name; never shows what else is stored."""
    cart, tenant = request.cart, request.tenant
    if not cart.get("customer"):
        return redirect(_url(request, "kiosk_identify"))
    offers = _package_offers(tenant, cart)
    others = _other_packages(tenant, cart)
    if not offers and not others:
        return redirect(_url(request, "kiosk_summary"))
    if request.method == "POST":
        use, buy = [], set()
        for offer in offers:
            choice = request.POST.get(f"choice-{offer.service.pk}", "pay")
            if choice == "session" and offer.left:
                use.append(offer.service.pk)
            elif choice.startswith("package-"):
                buy |= {p.pk for p in offer.on_sale if choice == f"package-{p.pk}"}
        buy |= {p.pk for p in others if request.POST.get(f"also-{p.pk}")}
        cart.update(use_sessions=use, buy_packages=sorted(buy), packages_chosen=True)
        save_cart(request, cart)
        return redirect(_url(request, "kiosk_summary"))
    returning = find_customer(tenant, cart["customer"]["cpf"]) is not None
    return render(
        request,
        "kiosk/packages.html",
        _base_context(
            request,
            offers=offers,
            others=others,
            bought=set(cart.get("buy_packages", [])),
            # The first name typed now: a returning customer is greeted by it, and by nothing
            # else the studio has stored (phone, e-mail).
            first_name=cart["customer"]["customer_name"].split(" ")[0] if returning else "",
            step=3,
            screen="personal",
            back_url=_url(request, "kiosk_identify"),
        ),
    )


@kiosk_view("GET", "POST")
@purchase_step
def summary(request: HttpRequest, slug: str) -> HttpResponse:
    """Everything chosen, the total and the payment methods; choosing one buys."""
    cart, tenant = request.cart, request.tenant
    if not cart["services"]:
        return redirect(_url(request, "kiosk_services"))
    if not cart.get("customer"):
        return redirect(_url(request, "kiosk_identify"))
    methods = _payment_methods(tenant)
    if request.method == "POST":
        response = _buy(request, cart, methods)
        if response is not None:
            return response
    rows, extras_, packages_, total = _cart_items(tenant, cart)
    return render(
        request,
        "kiosk/summary.html",
        _base_context(
            request,
            rows=rows,
            extras=extras_,
            packages=packages_,
            # A returning customer is greeted by the first name typed now, and by nothing
            # else the studio has stored (phone, e-mail).
            returning=find_customer(tenant, cart["customer"]["cpf"]) is not None,
            back_url=_url(request, "kiosk_packages" if cart.get("offered") else "kiosk_identify"),
            total=total,
            methods=methods,
            customer=cart["customer"],
            step=4,
            screen="personal",
        ),
    )


def _buy(request: HttpRequest, cart: dict, methods: list[tuple[str, str]]) -> HttpResponse | None:
    """Create the ticket (once per cart) and start its payment; None re-renders the summary.

    A cart that costs nothing has no method to choose: its ticket skips payment. Its items
    are priced here only then (create_ticket prices the sale itself).
    """
    tenant = request.tenant
    if request.POST.get("key") != cart["key"]:
        # A page from an earlier purchase (back button, a second tab): never buys.
        messages.error(request, _("This screen was out of date. Check your order and try again."))
        return redirect(_url(request, "kiosk_summary"))
    method = request.POST.get("method", "")
    if method not in dict(methods) and _cart_items(tenant, cart)[3]:
        messages.error(request, _("Choose how you want to pay."))
        return None
    customer = cart["customer"]
    try:
        ticket = create_ticket(
            tenant,
            service_ids=cart["services"],
            extras={int(k): v for k, v in cart["extras"].items()},
            customer_name=customer["customer_name"],
            cpf=customer["cpf"],
            # A cart saved before the question existed has no answer: no.
            cpf_on_invoice=customer.get("cpf_on_invoice", False),
            phone=customer["phone"],
            consent_version=customer["consent_version"],
            priority=customer["priority"],
            idempotency_key=cart["key"],
            use_sessions=cart.get("use_sessions", []),
            buy_packages=cart.get("buy_packages", []),
            waivers=cart.get("waivers", []),
        )
    except ValidationError as refused:
        return _refused(request, cart, refused)
    if customer.get("whatsapp"):
        optin.opt_in(ticket, consent_version=optin.CONSENT_VERSION)
    cart["ticket"] = ticket.pk
    if not ticket.total:
        save_cart(request, cart)
        issue_free_ticket(ticket)
        return redirect(_url(request, "kiosk_ticket"))
    cart["method"] = method
    save_cart(request, cart)
    if method in dict(methods):  # else the price changed from nothing: choose on the next screen
        _start(request, ticket, method)
    return redirect(_url(request, "kiosk_payment"))


def _refused(request: HttpRequest, cart: dict, refused: ValidationError) -> HttpResponse:
    """Send the customer back to the step whose data create_ticket refused, saying why."""
    errors = refused.message_dict if hasattr(refused, "error_dict") else {"": refused.messages}
    for text in (m for field_messages in errors.values() for m in field_messages):
        messages.error(request, text)
    if "services" in errors:
        # What went off sale meanwhile leaves the cart; the rest of the choice stays.
        sellable = sellable_ids(request.tenant)
        cart["services"] = [pk for pk in cart["services"] if pk in sellable]
        save_cart(request, cart)
        return redirect(_url(request, "kiosk_services"))
    if "extras" in errors:
        return redirect(_url(request, "kiosk_extras"))
    return redirect(_url(request, "kiosk_identify"))


def _start(request: HttpRequest, ticket: Ticket, method: str) -> None:
    try:
        session = start_payment(ticket, method)
    except PaymentError as refused:
        # Shown on the payment screen with the choice to try again or pay another way.
        messages.error(request, str(refused))
    else:
        # The payment screen this tap answers with (in_place) shows this ticket and payment,
        # just re-checked under their lock: it need not read them again.
        request.paying = (ticket, session)


@kiosk_view("GET", "POST")
def payment(request: HttpRequest, slug: str) -> HttpResponse:
    """PIX QR and copia e cola, the card terminal, or “go to the cashier” for cash.

    A POST starts (again) the payment with the chosen method: trying again after a failure or
    an expiry, or switching to another method.
    """
    cart = get_cart(request)
    ticket, session = getattr(request, "paying", (None, None))
    if ticket is None:
        ticket = _cart_ticket(request, cart)
    if ticket is not None and ticket.status == T.PENDING_PAYMENT and not ticket.total:
        ticket = issue_free_ticket(ticket)  # left unpaid by an interrupted purchase
    if ticket is None or ticket.status != T.PENDING_PAYMENT:
        return _where_ticket_is(request, ticket)
    methods = _payment_methods(request.tenant)
    if request.method == "POST":
        method = request.POST.get("method", "")
        if method in dict(methods):
            cart["method"] = method
            save_cart(request, cart)
            _start(request, ticket, method)
        return redirect(_url(request, "kiosk_payment"))
    if session is None:
        session = session_for_ticket(ticket)
    context = _payment_context(request, ticket, session, methods)
    return render(request, "kiosk/payment.html", context)


def _payment_context(request, ticket, session, methods) -> dict:
    state = "none"
    if session is not None:
        if session.status == S.PENDING and session.expires_at <= timezone.now():
            state = "expired"
        elif session.status == S.PENDING:
            state = session.method
        elif session.status in (S.FAILED, S.CANCELED):
            state = "failed"
    waiting = {Method.CASH: "final", Method.PIX: "payment", Method.CARD: "payment"}
    paying = state in (Method.PIX, Method.CARD)
    return _base_context(
        request,
        screen=waiting.get(state, "step"),
        ticket=ticket,
        session=session,
        state=state,
        methods=methods,
        status_url=status_url(ticket),
        step=5,
        poll_seconds=settings.KIOSK_PAYMENT_POLL_SECONDS,
        # The ticket's own socket (config/routing.py), as the phone's page opens it: the PIX
        # or card screen moves on as soon as the payment does, and the cash screen turns into
        # the ticket when the front desk confirms while the customer still looks.
        live={"socket": ticket_socket_path(ticket), "ticket": ticket.pk}
        if paying or state == Method.CASH
        else None,
        # Only against the fake MercadoPago, never in production (payments/demo.py).
        demo=paying and demo.can_simulate(session),
    )


@kiosk_view("GET")
def payment_status(request: HttpRequest, slug: str) -> HttpResponse:
    """Re-read by the payment screen when its ticket's socket says something moved, and every
    KIOSK_PAYMENT_POLL_SECONDS: moves on when paid.

    The provider's webhook usually confirms first, and this only re-reads the database.
    The provider is asked at most once per PROVIDER_CHECK_SECONDS per payment, for a webhook
    that never came. Asking at every poll was one MercadoPago round trip per paying kiosk
    every 3 s (the poll's interval then), each holding a server thread while it waits:
    ~1,900 a second across the growth target's peak (bench/README.md), ~560 now.
    """
    cart = get_cart(request)
    ticket = _cart_ticket(request, cart)
    if ticket is None or ticket.status != T.PENDING_PAYMENT:
        if ticket is not None and ticket.status != T.CANCELLED:
            return _redirect(request, _url(request, "kiosk_ticket"))
        return _redirect(request, _url(request, "kiosk_welcome"))
    session = session_for_ticket(ticket)
    if (
        session is not None
        and session.status == S.PENDING
        and session.method != Method.CASH
        # The first poll of its window adds the key; the others find it there.
        and cache.add(f"provider-check:{session.pk}", 1, PROVIDER_CHECK_SECONDS)
    ):
        session = refresh_status(session)
        ticket.refresh_from_db()
        if ticket.status != T.PENDING_PAYMENT:
            return _redirect(request, _url(request, "kiosk_ticket"))
    context = _payment_context(request, ticket, session, _payment_methods(request.tenant))
    return render(request, "kiosk/payment.html#status", context)


@kiosk_view("POST")
def simulate(request: HttpRequest, slug: str) -> HttpResponse:
    """Demo only: *Simular pagamento* / *Simular recusa* on the PIX and card screens.

    Asks the fake MercadoPago to approve or refuse this purchase's payment (payments/demo.py);
    the answer comes back as a signed webhook and the screen moves on by itself, as it does
    for a real payment: a tap from htmx gets nothing to swap (204), so no re-read races the
    webhook. 404 unless the SDK talks to the fake on this machine.
    """
    if not is_demo_api():
        raise Http404("not in demo mode")
    cart = get_cart(request)
    ticket = _cart_ticket(request, cart)
    if ticket is None or ticket.status != T.PENDING_PAYMENT:
        return _where_ticket_is(request, ticket)
    session = session_for_ticket(ticket)
    outcome = request.POST.get("outcome", "")
    if outcome in demo.OUTCOMES and demo.can_simulate(session):
        try:
            demo.simulate(session, outcome)
        except ProviderError as error:
            log.warning("kiosk %s: demo payment %s not simulated: %s", slug, session.pk, error)
            messages.error(request, _("The demo payment could not be simulated. Try again."))
        else:
            if request.htmx:
                return HttpResponse(status=204)
    return _redirect(request, _url(request, "kiosk_payment"))


@kiosk_view("GET")
def ticket_screen(request: HttpRequest, slug: str) -> HttpResponse:
    """The number, huge; each service's place and wait; the QR to follow it on the phone."""
    cart = get_cart(request)
    ticket = _cart_ticket(request, cart)
    if ticket is None or ticket.status in (T.PENDING_PAYMENT, T.CANCELLED):
        return _where_ticket_is(request, ticket)
    lines = [
        {"line": line, "place": queue.place_of(line)}
        for line in ticket.lines.select_related("service").order_by("position")
    ]
    printed = PrinterSettings.objects.ticket_printer(request.tenant) is not None
    # A free ticket (R$ 0,00) has no payment and so no receipt to offer.
    has_receipt = receipts_of(ticket).exists()
    # The purchase's chime (static/js/sound.js), the first time this screen shows: not again
    # when it is reloaded.
    chime = not cart.get("chimed")
    if chime:
        save_cart(request, {**cart, "chimed": True})
    return render(
        request,
        "kiosk/ticket.html",
        _base_context(
            request,
            screen="final-personal",  # "All set, Maria!"
            ticket=ticket,
            lines=lines,
            printed=printed,
            status_url=status_url(ticket),
            receipt_url=receipt_url(ticket) if has_receipt else "",
            balances=credits.balances(ticket.customer),
            sound="paid" if chime else "",
        ),
    )


@kiosk_view("POST")
def leave(request: HttpRequest, slug: str) -> HttpResponse:
    """Back to the welcome screen: the customer cancelled, finished or walked away.

    A ticket still awaiting payment is abandoned — its payment and the ticket are cancelled
    and its extras go back to stock — unless it was sent to the cashier (cash): that one
    waits for the operator until the payment timeout of the expiry command.

    The customer's own *Cancelar compra* is asked twice: the screen's dialog sends `confirm`
    with the second tap; without script the first POST answers with the same question as a
    page. The inactivity timeout ("idle") cancels without asking.
    """
    cart = get_cart(request)
    ticket = _cart_ticket(request, cart)
    asking = request.POST.get("reason") == "cancel" and not request.POST.get("confirm")
    if asking and ticket is not None and ticket.status == T.PENDING_PAYMENT:
        return render(request, "kiosk/cancel.html", _base_context(request, step=5))
    if ticket is not None and ticket.status == T.PENDING_PAYMENT:
        ticket = abandon(request.tenant, ticket.pk, reason=_("abandoned at the kiosk"))
    clear_cart(request)
    paid_meanwhile = ticket is not None and ticket.status not in (T.PENDING_PAYMENT, T.CANCELLED)
    if paid_meanwhile and request.POST.get("reason") == "cancel":
        # Paid at the very last moment: show the ticket rather than lose it.
        save_cart(request, {**cart, "ticket": ticket.pk})
        return redirect(_url(request, "kiosk_ticket"))
    return redirect(_url(request, "kiosk_welcome"))
