"""An attacker who rents a tenant, scripted against the real stack: Daphne on PostgreSQL and
Redis, over HTTP, as the attacker's browser would send it.

Each case of issue 16 has its attack here or in the module that owns it (named below), so
this file is the index of the trust boundary:

- printers, webhooks and alert SMTP/Slack aimed at the platform: here, through the admin, and
  at delivery in tests/test_printer_destinations.py, tests/test_ops_webhooks.py and
  tests/test_ops_notifications.py (DNS rebinding, pinning, no byte reaching a listener);
- tenant text forming lines of another protocol on the printer's wire: here (a kiosk sale
  printed to a TCP printer) and tests/test_printer_destinations.py;
- CSV formulas, Unicode CPFs, malformed tokens, oversized bodies, cached personal pages: here;
- a revoked display's socket: tests/test_revocation.py (two Daphnes);
- Redis stopped or paused: tests/test_redis_outage.py; PostgreSQL stopped: tests/test_faults.py;
  connections under load: tests/test_connections.py.
"""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Iterator

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from equipment.models import Kind, PrinterSettings
from equipment.spooler import Spooler
from ops.models import NotificationSettings
from payments.models import PaymentSettings
from payments.sessions import confirm_cash
from tenants.models import Membership, Role, Tenant, WebhookEndpoint
from tests import daphne_server
from tests.browsing import PASSWORD, Browser, buy, log_in_to_admin, pair_kiosk
from tests.conftest import make_device, make_service
from tests.test_printing import make_printer
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def daphne(django_db_setup, django_db_blocker) -> Iterator[daphne_server.DaphneProcess]:
    """Production's lists (no private webhook targets, printers off loopback), a small body
    limit so the oversized upload stays small."""
    extra = {"MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT), "WEBHOOKS_ALLOW_PRIVATE": "false"}
    for servers in daphne_server.serve(1, django_db_blocker, extra_env=extra):
        yield servers[0]


@pytest.fixture(scope="module")
def password_hash() -> str:
    return PBKDF2PasswordHasher().encode(PASSWORD, "attack-salt")


@pytest.fixture
def mallory(django_user_model, tenant, password_hash):
    """The tenant's own admin, staff in the admin, not a platform superuser: the attacker."""
    user = django_user_model.objects.create(
        username="mallory", is_staff=True, password=password_hash
    )
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    return user


@pytest.fixture
def studio(tenant):
    cryo = make_service(tenant)
    make_device(tenant, "Cabine 1", [cryo])
    PaymentSettings.objects.create(
        tenant=tenant, pix_key="studio@example.com", merchant_name="Studio", merchant_city="SP"
    )
    return {"tenant": tenant, "cryo": cryo}


def admin_form(browser: Browser, path: str, data: dict) -> str:
    """POST an admin add form as the browser would (its CSRF token first): the page's text."""
    browser.get(path)
    answer = browser.post(path, data={**data, "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
    assert answer.status_code == 200, "the form was accepted"  # refused: the form again
    return answer.text


# --- the platform's network and files, through the tenant's settings --------------------------


def test_a_tenant_admin_cannot_aim_a_printer_a_webhook_or_alerts_at_the_platform(
    daphne, studio, mallory
):
    tenant = studio["tenant"]
    printer = make_device(tenant, "Impressora", kind=Kind.PRINTER)
    admin = log_in_to_admin(daphne, mallory)
    printer_form = {
        "equipment": printer.pk,
        "prints_tickets": "on",
        "port": 9100,
        "baudrate": 9600,
        "paper_width": 80,
    }
    aims = {
        "Redis": {"connection": "network", "host": "127.0.0.1", "port": 6379},
        "the metadata service": {"connection": "network", "host": "169.254.169.254"},
        "a name for loopback": {"connection": "network", "host": "localhost"},
        "a file of the platform": {"connection": "file", "device": "/etc/passwd"},
        "out of its folder": {"connection": "file", "device": "../outro/printer.bin"},
    }
    for aim, fields in aims.items():
        page = admin_form(admin, "/admin/equipment/printersettings/add/", printer_form | fields)
        assert "errorlist" in page, aim
    assert not PrinterSettings.objects.exists()

    page = admin_form(
        admin,
        "/admin/tenants/webhookendpoint/add/",
        {
            "tenant": tenant.pk,
            "target_url": f"http://127.0.0.1:{daphne.port}/admin/",
            "secret": "a-secret-of-16-chars",
            "enabled": "on",
        },
    )
    assert "errorlist" in page and not WebhookEndpoint.objects.exists()

    page = admin_form(
        admin,
        "/admin/ops/notificationsettings/add/",
        {
            "tenant": tenant.pk,
            "enabled": "on",
            "email_to": "gerente@example.com",
            "smtp_host": "127.0.0.1",
            "smtp_port": 6379,
            "queue_length_threshold": 15,
            "wait_minutes_threshold": 40,
            "payment_failures_threshold": 3,
        },
    )
    assert "errorlist" in page and not NotificationSettings.objects.exists()


def test_a_tenant_name_made_of_protocol_lines_reaches_the_printer_as_text(
    daphne, studio, tenant, mallory, fake_printer
):
    """The tenant's name (its admin edits it) is printed inside the layout's commands, never
    as a line of its own that another protocol would read: the attack that once became a
    command on the platform's Redis."""
    Tenant.objects.filter(pk=tenant.pk).update(name="Studio\r\nFLUSHALL\r\nSET owned 1\r\n")
    make_printer(tenant, port=fake_printer.port)
    kiosk = pair_kiosk(daphne, tenant)
    session = buy(kiosk, tenant, studio["cryo"], "cash", "Ana")

    confirm_cash(tenant, session.pk, mallory, session.amount)
    Spooler(say=lambda line: None).run_until_idle()

    [printed] = fake_printer.wait_for(1)
    assert b"FLUSHALL" in printed  # the name is on the ticket…
    for line in printed.replace(b"\r", b"\n").split(b"\n"):
        assert not line.startswith((b"FLUSHALL", b"SET owned")), line  # …as text only


# --- what a tenant's users type --------------------------------------------------------------


def test_a_formula_typed_at_the_kiosk_reaches_the_managers_spreadsheet_as_text(
    daphne, studio, tenant, mallory
):
    kiosk = pair_kiosk(daphne, tenant)
    buy(kiosk, tenant, studio["cryo"], "cash", '=HYPERLINK("http://evil.example","Ana")')
    admin = log_in_to_admin(daphne, mallory)
    today = tenant.today().isoformat()

    export = admin.get(f"/t/{tenant.slug}/gestao/exportar/senhas.csv?start={today}&end={today}")

    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert '\'=HYPERLINK("http://evil.example","Ana")' in rows[1]
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")]


def test_a_cpf_in_foreign_digits_is_stored_as_the_cpf(daphne, studio, tenant):
    kiosk = pair_kiosk(daphne, tenant)

    buy(kiosk, tenant, studio["cryo"], "cash", "Ana", customer_cpf="٥٢٩٩٨٢٢٤٧٢٥")

    assert Ticket.objects.get().customer_cpf == "52998224725"


def test_malformed_tokens_are_not_found_never_a_server_error(daphne, studio, tenant):
    anonymous = Browser(daphne)  # fails the test on any 5xx
    for token in ("%00", "a%00b" * 4, "x" * 5000, "%C3%A7%F0%9F%98%80", "..%2F..%2Fetc"):
        for path in (f"/t/{tenant.slug}/senha/{token}/", f"/t/{token}/totem/"):
            assert anonymous.get(path).status_code in (400, 404), path


def test_an_oversized_body_is_refused_before_it_is_read(daphne, studio):
    with socket.create_connection(("127.0.0.1", daphne.port), timeout=5) as raw:
        raw.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Content-Length: {BODY_LIMIT * 100}\r\n\r\n".encode()
            + b"x" * 1024
        )
        answer = raw.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_pages_with_personal_data_are_never_cached(daphne, studio, tenant, mallory):
    admin = log_in_to_admin(daphne, mallory)
    for path in ("/admin/", "/admin/tickets/ticket/", f"/t/{tenant.slug}/gestao/"):
        assert "no-store" in admin.get(path).headers["Cache-Control"], path
