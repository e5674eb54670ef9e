"""Personas and small factories shared by the suite.

Three personas, as in healthchecks: alice is an operator of the studio, bob manages it,
charlie belongs to another tenant and must see nothing of alice's; and dave, the studio's
administrator, who manages its team.
"""

from __future__ import annotations

import os
from datetime import UTC
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from equipment.models import Equipment, Kind
from payments.fake_mercadopago import COLLECTOR_EMAIL, FakeMercadoPago
from payments.fake_mercadopago_orders import DEMO_TERMINAL
from payments.models import PaymentSettings
from tenants.models import Membership, Role, Tenant
from tickets.issuing import create_ticket
from tickets.models import Extra, Service

CHROMIUM = "/usr/bin/chromium"
# Browser tests drive Chromium through Playwright's sync API, which runs an event loop in
# this process; Django then refuses its sync ORM in the live server's threads unless told
# the loop is not ours. Set at import, before pytest-django flushes databases between tests.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
ON_REDIS = bool(settings.REDIS_URL)
REQUIRE_SERVERS = os.environ.get("TOTEM_REQUIRE_SERVERS") == "1"


def pytest_collection_modifyitems(config, items):
    # Browser tests last: pytest-playwright keeps an event loop running in the main thread for
    # the rest of the session, which breaks every later test that starts its own loop.
    items[:] = sorted(items, key=lambda item: "browser" in item.keywords)
    # CI sets TOTEM_REQUIRE_SERVERS: there a test that would skip for a missing server is a
    # failure, so a misconfigured run cannot pass by skipping the hard tests.
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            if REQUIRE_SERVERS:
                raise pytest.UsageError(
                    "TOTEM_REQUIRE_SERVERS is set but DATABASE_URL is not PostgreSQL"
                )
            item.add_marker(
                pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
            )
        if "redis" in item.keywords and not ON_REDIS:
            if REQUIRE_SERVERS:
                raise pytest.UsageError("TOTEM_REQUIRE_SERVERS is set but REDIS_URL is not set")
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://…"))


@pytest.fixture
def tenant(db) -> Tenant:
    return Tenant.objects.create(slug="studio", name="Studio Alfa")


@pytest.fixture
def midday(tenant) -> Tenant:
    """`tenant` in a time zone where it is about noon now, so that a test about the end of the
    local day (or about an hour before or after now) gives the same answer at any hour."""
    offset = 12 - timezone.now().astimezone(UTC).hour  # local hour = UTC hour + offset
    # The Etc/GMT zones' signs are inverted: Etc/GMT-3 is three hours ahead of UTC.
    tenant.timezone = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    tenant.save()
    return tenant


@pytest.fixture
def other_tenant(db) -> Tenant:
    return Tenant.objects.create(slug="outro", name="Studio Beta")


def make_user(django_user_model, username: str, **extra):
    return django_user_model.objects.create_user(
        username=username, password="pw-" + username, **extra
    )


@pytest.fixture
def alice(django_user_model, tenant):
    """Operator of `tenant`."""
    user = make_user(django_user_model, "alice")
    Membership.objects.create(user=user, tenant=tenant, role=Role.OPERATOR)
    return user


@pytest.fixture
def bob(django_user_model, tenant):
    """Manager of `tenant`, staff so he can use the admin."""
    user = make_user(django_user_model, "bob", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Role.MANAGER)
    return user


@pytest.fixture
def charlie(django_user_model, other_tenant):
    """Manager of another tenant: an outsider to `tenant`."""
    user = make_user(django_user_model, "charlie", is_staff=True)
    Membership.objects.create(user=user, tenant=other_tenant, role=Role.MANAGER)
    return user


@pytest.fixture
def dave(django_user_model, tenant):
    """Administrator of `tenant` (its owner), staff: he manages its team."""
    user = make_user(django_user_model, "dave", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    return user


def make_service(tenant, name="Crioterapia", prefix="C", price="120.00", minutes=10, order=0):
    return Service.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        price=Decimal(price),
        duration_minutes=minutes,
        display_order=order,
    )


@pytest.fixture
def cryo(tenant) -> Service:
    return make_service(tenant, "Crioterapia", "C", "120.00", 10, 0)


@pytest.fixture
def boots(tenant) -> Service:
    return make_service(tenant, "Bota de compressão", "B", "80.00", 30, 1)


@pytest.fixture
def towel(tenant) -> Extra:
    return Extra.objects.create(tenant=tenant, name="Toalha", price=Decimal("5.00"), stock=2)


def make_device(tenant, name, services=(), kind=Kind.SERVICE_DEVICE, location=""):
    device = Equipment.objects.create(
        tenant=tenant,
        kind=kind,
        name=name,
        identifier=name.lower().replace(" ", "-"),
        location=location,
    )
    device.services.set(services)
    return device


def make_ticket(tenant, services, **kwargs):
    """A ticket awaiting payment. A service no online device runs gets one first (a device
    named after it), since only what can be run is sold."""
    for service in services:
        if not Equipment.objects.able_to_run(service).exists():
            make_device(tenant, f"{service.name} {service.pk}", [service])
    kwargs.setdefault("customer_name", "Maria Souza")
    kwargs.setdefault("consent_version", "2026-01")
    return create_ticket(tenant, service_ids=[s.id for s in services], **kwargs)


def pg_backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 costs ~0.3 s per user; the suite creates hundreds of them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def queued_ticket(tenant, services, **kwargs):
    """A ticket paid and in the queue, its lines waiting in their services' queues."""
    from django.db import transaction

    from tickets.models import Ticket
    from tickets.printing import mark_paid

    ticket = make_ticket(tenant, services, **kwargs)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        mark_paid(ticket)
    return ticket


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Throttle counters live in the cache; one test's failed logins must not lock out another.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings):
    # Uploads (logos, the demo's drawn logo, pictures) go to a folder of this run that the
    # test Daphnes serve too, never to the checkout's var/media.
    from tests.daphne_server import MEDIA_ROOT

    settings.MEDIA_ROOT = MEDIA_ROOT


@pytest.fixture
def printers_on_loopback(settings):
    """The platform lets tenants print on 127.0.0.1, on any unprivileged port: where the fake
    printers listen. Production never can (config/settings.py refuses a loopback network);
    tests/test_printer_destinations.py runs with the defaults and proves it refused."""
    settings.PRINTER_ALLOWED_NETWORKS = [*settings.PRINTER_ALLOWED_NETWORKS, "127.0.0.0/8"]
    settings.PRINTER_ALLOWED_PORTS = range(1024, 65536)


@pytest.fixture
def fake_printer(printers_on_loopback):
    """A network printer on 127.0.0.1 that keeps what it is sent (tests/fake_printer.py),
    at a destination the platform allows."""
    from tests.fake_printer import FakePrinter

    with FakePrinter() as printer:
        yield printer


class RebindingResolver:
    """`socket.getaddrinfo` for one made-up name that answers `answers` in turn (the last from
    then on); every other name resolves as usual. Only for DNS rebinding: a name whose answer
    changes between the check and the connection. `calls` counts the lookups of the name."""

    def __init__(self, monkeypatch, name: str, *answers: str) -> None:
        import socket

        self.answers, self.calls = list(answers), 0
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host != name:
                return real(host, port, *args, **kwargs)
            ip = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


MP_SECRET = "whsec-test-secret"


PIX_PAYER_DOMAIN = "pagador.totem.test"


@pytest.fixture
def fake(settings):
    """The fake MercadoPago HTTP server on 127.0.0.1; the real SDK talks to it. The platform's
    PIX payers get addresses on PIX_PAYER_DOMAIN."""
    server = FakeMercadoPago(secret=MP_SECRET).start()
    settings.MERCADOPAGO_BASE_URL = server.url
    settings.MERCADOPAGO_TIMEOUT = 2.0
    settings.PIX_PAYER_EMAIL_DOMAIN = PIX_PAYER_DOMAIN
    yield server
    server.stop()


@pytest.fixture
def mp(tenant):
    """`tenant` takes PIX and card through MercadoPago (card: the Point Orders API). Its
    contact e-mail is its MercadoPago account's (the fake's collector), as at most studios:
    never a payer's."""
    tenant.contact_email = COLLECTOR_EMAIL
    tenant.save(update_fields=["contact_email"])
    return PaymentSettings.objects.create(
        tenant=tenant,
        pix_provider="mercadopago",
        card_enabled=True,
        mercadopago_access_token="TEST-token",
        mercadopago_webhook_secret=MP_SECRET,
        mercadopago_point_device=DEMO_TERMINAL,
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium (Playwright's own download does not work here), headless, with no
    background traffic: this machine's network is closed and refused connections pile up."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            # As a TV's kiosk browser is launched: sound without a tap.
            "--autoplay-policy=no-user-gesture-required",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "pt-BR"}


def wait_for_js(page, expression: str, timeout: float = 30.0) -> None:
    """Poll `expression` until it is truthy. Playwright's wait_for_function evaluates a string
    inside the page, which our Content-Security-Policy forbids; page.evaluate does not."""
    import time

    from playwright.sync_api import Error

    def holds() -> bool:
        try:
            return page.evaluate(expression)
        except Error as error:  # the page navigated mid-evaluation: ask the new one
            if "context was destroyed" not in str(error):
                raise
            return False

    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)
