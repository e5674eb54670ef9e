"""The kiosk through the test client: pairing, the purchase flow, what must never happen."""

from __future__ import annotations

import threading
from datetime import time, timedelta

import pytest
from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from equipment.models import DeviceServiceSettings, Kind
from payments.models import Method, PaymentSession, PaymentSettings, SessionStatus
from payments.sessions import confirm_static_pix
from tenants.models import AuditLog, OpeningHours
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tests.daphne_server import free_port
from tickets.issuing import sellable_ids
from tickets.models import Priority, Service, Ticket, TicketStatus
from totem import kiosk, pairing
from totem.consent import CONSENT_VERSION
from totem.models import PairingCode

T = TicketStatus
VALID_CPF = "529.982.247-25"


# --- fixtures and steps ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _forget_pairing_failures():
    # Failed pairing attempts are counted in the cache, which outlives each test's database.
    cache.clear()
    yield
    cache.clear()


def url(tenant, name: str) -> str:
    return reverse(name, args=[tenant.slug])


def pair(client: Client, tenant, device) -> None:
    code = PairingCode.objects.create(tenant=tenant, equipment=device)
    response = client.post(url(tenant, "kiosk_pair"), {"code": code.code})
    assert response.status_code == 302, response.content


def kiosk_cart(client: Client) -> dict | None:
    """The purchase the kiosk keeps for this browser (on the pairing its cookie names)."""
    data = signing.loads(client.cookies[pairing.cookie_name(Kind.KIOSK)].value, salt=pairing.SALT)
    return PairingCode.objects.get(pk=data["p"]).cart


def set_kiosk_cart(client: Client, cart: dict | None) -> None:
    data = signing.loads(client.cookies[pairing.cookie_name(Kind.KIOSK)].value, salt=pairing.SALT)
    PairingCode.objects.filter(pk=data["p"]).update(cart=cart)


@pytest.fixture
def kiosk_device(tenant):
    return make_device(tenant, "Totem 1", kind=Kind.KIOSK)


@pytest.fixture
def machines(tenant, cryo, boots):
    """An online device for each service: both can be sold today."""
    return [make_device(tenant, "Crio 1", [cryo]), make_device(tenant, "Botas 1", [boots])]


@pytest.fixture
def pix(tenant):
    """The tenant accepts static PIX (confirmed by an operator) and cash."""
    return PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio Alfa",
        merchant_city="Sao Paulo",
    )


@pytest.fixture
def kiosk_client(tenant, kiosk_device, machines) -> Client:
    client = Client()
    pair(client, tenant, kiosk_device)
    return client


def identify(client, tenant, **overrides):
    data = {
        "customer_name": "Maria Souza",
        "customer_cpf": VALID_CPF,
        "customer_phone": "(11) 91234-5678",
        "priority": "",
        "consent": "on",
        **overrides,
    }
    return client.post(url(tenant, "kiosk_identify"), data)


def fill_cart(client, tenant, services, extras=()):
    """Welcome → services → extras → identification: up to the summary."""
    assert client.post(url(tenant, "kiosk_start")).status_code == 302
    for service in services:
        client.post(url(tenant, "kiosk_services"), {"toggle": service.pk})
    for extra in extras:
        client.post(url(tenant, "kiosk_extras"), {"extra": extra.pk, "change": "add"})
    assert client.post(url(tenant, "kiosk_extras"), {"next": "1"})["Location"].endswith(
        "/identificacao/"
    )
    assert identify(client, tenant)["Location"].endswith("/resumo/")


def cart_key(client, tenant) -> str:
    return kiosk_cart(client)["key"]


def buy(client, tenant, method="cash"):
    return client.post(
        url(tenant, "kiosk_summary"), {"method": method, "key": cart_key(client, tenant)}
    )


# --- pairing ---------------------------------------------------------------------------------


def test_the_service_list_costs_the_same_queries_with_2_and_30_services(
    tenant, kiosk_client, django_assert_num_queries
):
    # Each service's wait comes from its stored measured duration, not a query per service.
    kiosk_client.post(url(tenant, "kiosk_start"))
    with CaptureQueriesContext(connection) as two:
        assert kiosk_client.get(url(tenant, "kiosk_services")).status_code == 200
    for n in range(28):
        service = make_service(tenant, f"Serviço {n}", prefix="S", order=n + 2)
        make_device(tenant, f"Cabine {n}", [service])
    with django_assert_num_queries(len(two.captured_queries)):
        page = kiosk_client.get(url(tenant, "kiosk_services"))
    assert page.content.decode().count('name="toggle"') == 30


def test_start_a_toggle_and_leave_run_few_statements(
    tenant, cryo, kiosk_client, django_assert_num_queries
):
    """The pairing; the list's services with their queues, the hours and the online devices
    with their cool-downs; the cart's one write. Leaving asks only whether anything is sold."""
    boosted = {"HX-Request": "true", "HX-Boosted": "true"}
    kiosk_client.get(url(tenant, "kiosk_welcome"))  # the device's first request marks it seen
    with django_assert_num_queries(5):
        assert kiosk_client.post(url(tenant, "kiosk_start"), headers=boosted).status_code == 200
    with django_assert_num_queries(5):
        toggle = kiosk_client.post(
            url(tenant, "kiosk_services"), {"toggle": cryo.pk}, headers={"HX-Request": "true"}
        )
    assert f'value="{cryo.pk}" class="card selected' in toggle.content.decode()
    with django_assert_num_queries(4):
        assert kiosk_client.post(url(tenant, "kiosk_leave"), headers=boosted).status_code == 200
    assert kiosk_cart(kiosk_client) is None


def test_a_devices_own_cool_down_still_makes_the_wait(tenant, cryo, boots):
    """Read with the online devices now, a device's own cool-down still counts: one waiting,
    one device, a 10-min session and its own 20-min cool-down (the service's is 5): the next
    customer waits 30 min. A service with no own setting keeps the service's."""
    Service.objects.filter(pk__in=[cryo.pk, boots.pk]).update(cooldown_minutes=5)
    cabin = make_device(tenant, "Cabine", [cryo, boots])
    DeviceServiceSettings.objects.create(equipment=cabin, service=cryo, cooldown_minutes=20)
    queued_ticket(tenant, [cryo, boots])
    waits = {o.service: (o.waiting, o.wait_minutes) for o in kiosk.service_options(tenant)}
    assert waits == {cryo: (1, 30), boots: (1, 35)}


def test_a_tap_keeps_the_cart_on_its_pairing_written_once(tenant, cryo, kiosk_client):
    """No session row is read or written by the kiosk: the cart comes with the pairing the
    request reads anyway. The details' tap changes it twice (the customer, then where the
    purchase goes next) and writes it once."""
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    with CaptureQueriesContext(connection) as seen:
        assert identify(kiosk_client, tenant)["Location"].endswith("/resumo/")
    statements = [q["sql"] for q in seen.captured_queries]
    assert not any("django_session" in sql for sql in statements)
    assert sum(sql.startswith('UPDATE "totem_pairingcode"') for sql in statements) == 1
    assert kiosk_cart(kiosk_client)["customer"]["customer_name"] == "Maria Souza"
    assert kiosk_cart(kiosk_client)["offered"] is False


def test_a_tap_reads_the_opening_hours_once(tenant, cryo, kiosk_client):
    """Whether anything is sold, the service list and the welcome's hours all ask; one read
    per request serves them, and the next request reads again."""

    def hours_reads(method, name, data=None, **headers) -> int:
        with CaptureQueriesContext(connection) as seen:
            response = getattr(kiosk_client, method)(url(tenant, name), data or {}, **headers)
        assert response.status_code == 200, response
        return sum("tenants_openinghours" in q["sql"] for q in seen.captured_queries)

    boosted = {"headers": {"HX-Request": "true", "HX-Boosted": "true"}}
    assert hours_reads("post", "kiosk_start", **boosted) == 1  # and the list it answers with
    part = {"headers": {"HX-Request": "true"}}
    assert hours_reads("post", "kiosk_services", {"toggle": cryo.pk}, **part) == 1
    assert hours_reads("post", "kiosk_leave", **boosted) == 1  # the welcome screen
    # Closed from now on: the next request sees it.
    tomorrow = (tenant.local_now().weekday() + 1) % 7
    OpeningHours.objects.create(tenant=tenant, weekday=tomorrow, opens=time(8), closes=time(9))
    assert kiosk_client.post(url(tenant, "kiosk_start"))["Location"] == url(tenant, "kiosk_welcome")


def test_buying_reads_the_payment_settings_once_and_no_tenant(tenant, cryo, kiosk_client, pix):
    """The summary's methods, the payment started and the payment screen shown in place all
    ask for the settings; one read per request. The screen shows the payment just started
    without reading it again, and its status QR code needs no tenant read (the request has
    it)."""
    fill_cart(kiosk_client, tenant, [cryo])
    with CaptureQueriesContext(connection) as seen:
        bought = kiosk_client.post(
            url(tenant, "kiosk_summary"),
            {"method": "cash", "key": cart_key(kiosk_client, tenant)},
            headers={"HX-Request": "true", "HX-Boosted": "true"},
        )
    assert bought["HX-Push-Url"] == url(tenant, "kiosk_payment")
    reads = [q["sql"] for q in seen.captured_queries if q["sql"].startswith("SELECT")]
    assert sum('FROM "payments_paymentsettings"' in sql for sql in reads) == 1
    assert sum('FROM "tenants_tenant"' in sql for sql in reads) == 0
    # The pending ones locked when the payment starts; the screen shows the one started, and
    # its ticket, as they were just read under their lock (no read of its own).
    assert sum('FROM "payments_paymentsession"' in sql for sql in reads) == 1
    # The lock only: the idempotency key is looked up only when a purchase fails.
    assert sum('FROM "tickets_ticket"' in sql for sql in reads) == 1


def test_no_extras_on_sale_reads_them_once_on_the_way_to_identification(tenant, cryo, kiosk_client):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    with CaptureQueriesContext(connection) as seen:
        shown = kiosk_client.get(
            url(tenant, "kiosk_extras"), headers={"HX-Request": "true", "HX-Boosted": "true"}
        )
    assert shown["HX-Push-Url"] == url(tenant, "kiosk_identify")
    assert sum('FROM "tickets_extra"' in q["sql"] for q in seen.captured_queries) == 1


def test_what_a_tap_may_buy_is_what_the_service_list_shows_available(tenant, cryo, boots):
    """The tap check is a lean query; it must agree with the list the customer sees."""

    def shown() -> set[int]:
        return {o.service.pk for o in kiosk.service_options(tenant) if o.available}

    crio_1 = make_device(tenant, "Crio 1", [cryo])
    make_device(tenant, "Botas 1", [boots], kind=Kind.PRINTER)  # not a service device
    retired = make_device(tenant, "Botas 2", [boots])
    retired.deleted_at = timezone.now()
    retired.save()
    assert sellable_ids(tenant) == shown() == {cryo.pk}

    crio_1.status = "maintenance"
    crio_1.save()
    assert sellable_ids(tenant) == shown() == set()

    make_device(tenant, "Botas 3", [boots, cryo])
    cryo.is_active = False
    cryo.save()
    assert sellable_ids(tenant) == shown() == {boots.pk}

    OpeningHours.objects.create(
        tenant=tenant, weekday=(tenant.local_now().weekday() + 1) % 7, opens=time(8), closes=time(9)
    )
    assert not tenant.is_open()
    assert sellable_ids(tenant) == shown() == set()


def test_an_unpaired_browser_sees_the_pairing_screen(tenant, kiosk_device):
    client = Client()
    response = client.get(url(tenant, "kiosk_welcome"))
    assert response.status_code == 302
    assert response["Location"].startswith(url(tenant, "kiosk_pair"))
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "kiosk/pair.html"
    assert client.get(url(tenant, "kiosk_services")).status_code == 302
    assert client.post(url(tenant, "kiosk_start")).status_code == 302
    assert not PairingCode.objects.filter(cart__isnull=False).exists()


def test_a_paired_browser_sees_the_welcome_screen(kiosk_client, tenant):
    response = kiosk_client.get(url(tenant, "kiosk_welcome"))
    assert response.status_code == 200
    assert b"touch-to-start" in response.content


def test_a_kiosk_of_one_tenant_cannot_open_another_tenants_kiosk(
    kiosk_client, tenant, other_tenant
):
    make_device(other_tenant, "Totem B", kind=Kind.KIOSK)
    response = kiosk_client.get(url(other_tenant, "kiosk_welcome"))
    assert response.status_code == 302
    assert response["Location"].startswith(url(other_tenant, "kiosk_pair"))
    assert kiosk_client.post(url(other_tenant, "kiosk_start")).status_code == 302
    assert not PairingCode.objects.filter(cart__isnull=False).exists()


def test_a_pairing_code_cannot_be_used_twice(tenant, kiosk_device):
    code = PairingCode.objects.create(tenant=tenant, equipment=kiosk_device)
    first, second = Client(), Client()
    assert first.post(url(tenant, "kiosk_pair"), {"code": code.code}).status_code == 302
    response = second.post(url(tenant, "kiosk_pair"), {"code": code.code})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert "totem_kiosk" not in response.cookies
    assert second.get(url(tenant, "kiosk_welcome")).status_code == 302
    assert first.get(url(tenant, "kiosk_welcome")).status_code == 200


def test_a_code_of_another_tenant_pairs_nothing(tenant, other_tenant, kiosk_device):
    code = PairingCode.objects.create(tenant=tenant, equipment=kiosk_device)
    client = Client()
    response = client.post(url(other_tenant, "kiosk_pair"), {"code": code.code})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert PairingCode.objects.get(pk=code.pk).used_at is None


def test_an_expired_code_pairs_nothing(tenant, kiosk_device):
    code = PairingCode.objects.create(
        tenant=tenant, equipment=kiosk_device, expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = Client().post(url(tenant, "kiosk_pair"), {"code": code.code})
    assert response.context["form"].errors["code"]


def test_wrong_codes_are_throttled(tenant, kiosk_device):
    code = PairingCode.objects.create(tenant=tenant, equipment=kiosk_device)
    client = Client()
    for _ in range(5):
        client.post(url(tenant, "kiosk_pair"), {"code": "00000000"})
    response = client.post(url(tenant, "kiosk_pair"), {"code": code.code})
    assert response.status_code == 200
    assert PairingCode.objects.get(pk=code.pk).used_at is None


def test_revoking_a_pairing_unpairs_the_browser_at_once(kiosk_client, tenant):
    PairingCode.objects.update(revoked_at=timezone.now())
    assert kiosk_client.get(url(tenant, "kiosk_welcome")).status_code == 302


def test_revoking_a_pairing_forgets_the_purchase_it_held(kiosk_client, tenant, cryo):
    fill_cart(kiosk_client, tenant, [cryo])
    assert kiosk_cart(kiosk_client)["customer"]["cpf"]
    assert pairing.revoke(PairingCode.objects.filter(tenant=tenant)) == 1
    assert kiosk_cart(kiosk_client) is None


@pytest.mark.parametrize(
    "change",
    [
        "nothing",
        "revoked",
        "never used",
        "device deleted",
        "device made a display",
        "device moved to another tenant",
        "tenant switched off",
        "tenant deleted",
        "cookie of another device",
        "asked for another tenant",
    ],
)
def test_a_pairing_is_live_only_while_everything_it_names_is(
    change, kiosk_client, tenant, other_tenant, kiosk_device
):
    """Each condition of a live pairing, checked by the request's one read of it."""
    from django.core import signing

    from totem import pairing

    code = PairingCode.objects.get(equipment=kiosk_device)
    cookies = {k: v.value for k, v in kiosk_client.cookies.items()}
    now = timezone.now()
    slug = tenant.slug
    if change == "revoked":
        PairingCode.objects.filter(pk=code.pk).update(revoked_at=now)
    elif change == "never used":
        PairingCode.objects.filter(pk=code.pk).update(used_at=None)
    elif change == "device deleted":
        type(kiosk_device).objects.filter(pk=kiosk_device.pk).update(deleted_at=now)
    elif change == "device made a display":
        type(kiosk_device).objects.filter(pk=kiosk_device.pk).update(kind=Kind.DISPLAY)
    elif change == "device moved to another tenant":
        type(kiosk_device).objects.filter(pk=kiosk_device.pk).update(tenant=other_tenant)
    elif change == "tenant switched off":
        type(tenant).objects.filter(pk=tenant.pk).update(is_active=False)
    elif change == "tenant deleted":
        type(tenant).objects.filter(pk=tenant.pk).update(deleted_at=now)
    elif change == "cookie of another device":
        other = make_device(tenant, "Totem 2", kind=Kind.KIOSK)
        name = pairing.cookie_name(Kind.KIOSK)
        cookies[name] = signing.dumps({"p": code.pk, "e": other.pk}, salt=pairing.SALT)
    elif change == "asked for another tenant":
        slug = other_tenant.slug
    found = pairing._pairing(cookies, Kind.KIOSK, slug=slug)
    assert (found is not None) == (change == "nothing")
    by_tenant = pairing.paired_device_from_cookies(
        cookies, other_tenant if slug != tenant.slug else tenant, Kind.KIOSK
    )
    assert (by_tenant is not None) == (change == "nothing")


def test_a_forged_cookie_pairs_nothing(tenant, kiosk_device):
    client = Client()
    client.cookies["totem_kiosk"] = f'{{"p": 1, "e": {kiosk_device.pk}}}'
    assert client.get(url(tenant, "kiosk_welcome")).status_code == 302


def test_a_display_code_pairs_the_browser_as_that_display(tenant):
    display = make_device(tenant, "TV", kind=Kind.DISPLAY)
    code = PairingCode.objects.create(tenant=tenant, equipment=display)
    client = Client()
    response = client.post(
        url(tenant, "kiosk_pair"), {"code": code.code, "next": f"/t/{tenant.slug}/display/"}
    )
    assert response["Location"] == f"/t/{tenant.slug}/display/"
    assert "totem_display" in response.cookies
    # …and not as a kiosk.
    assert client.get(url(tenant, "kiosk_welcome")).status_code == 302


# --- the flow ----------------------------------------------------------------------------------


def test_the_whole_cash_flow_creates_exactly_one_ticket(kiosk_client, tenant, cryo, boots, towel):
    fill_cart(kiosk_client, tenant, [cryo, boots], [towel])
    summary = kiosk_client.get(url(tenant, "kiosk_summary"))
    assert summary.context["total"] == cryo.price + boots.price + towel.price
    assert summary.context["methods"] == [(Method.CASH, Method.CASH.label)]

    response = buy(kiosk_client, tenant, "cash")
    assert response["Location"] == url(tenant, "kiosk_payment")
    ticket = Ticket.objects.get()
    assert ticket.status == T.PENDING_PAYMENT
    assert ticket.customer_name == "Maria Souza"
    assert ticket.customer_cpf == "52998224725"
    assert ticket.consent_version == CONSENT_VERSION
    assert [line.service for line in ticket.lines.order_by("position")] == [cryo, boots]
    session = PaymentSession.objects.get()
    assert (session.method, session.status) == (Method.CASH, SessionStatus.PENDING)

    page = kiosk_client.get(url(tenant, "kiosk_payment"))
    assert page.context["state"] == "cash"
    assert ticket.number.encode() in page.content
    assert b"<svg" in page.content

    # Done: back to the welcome screen; the cash ticket waits for the cashier.
    done = kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "done"})
    assert done["Location"] == url(tenant, "kiosk_welcome")
    ticket.refresh_from_db()
    assert ticket.status == T.PENDING_PAYMENT
    assert Ticket.objects.count() == 1


def test_an_idle_cash_screen_is_not_abandoned(kiosk_client, tenant, cryo, towel):
    fill_cart(kiosk_client, tenant, [cryo], [towel])
    buy(kiosk_client, tenant, "cash")
    kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "idle"})
    assert Ticket.objects.get().status == T.PENDING_PAYMENT
    towel.refresh_from_db()
    assert towel.stock == 1


def test_a_double_submit_with_the_same_key_creates_one_ticket(kiosk_client, tenant, cryo, pix):
    fill_cart(kiosk_client, tenant, [cryo])
    key = cart_key(kiosk_client, tenant)
    # Two taps whose requests both left before the first answer: the same session state.
    other = Client()
    other.cookies = kiosk_client.cookies
    first = kiosk_client.post(url(tenant, "kiosk_summary"), {"method": "pix", "key": key})
    second = other.post(url(tenant, "kiosk_summary"), {"method": "pix", "key": key})
    assert first["Location"] == second["Location"] == url(tenant, "kiosk_payment")
    assert Ticket.objects.count() == 1
    assert PaymentSession.objects.filter(status=SessionStatus.PENDING).count() == 1


def test_the_create_ticket_idempotency_survives_a_cart_that_forgot_the_ticket(
    kiosk_client, tenant, cryo
):
    fill_cart(kiosk_client, tenant, [cryo])
    key = cart_key(kiosk_client, tenant)
    buy(kiosk_client, tenant)
    # A racing request saved the cart without the ticket id: the key still finds it.
    set_kiosk_cart(kiosk_client, {**kiosk_cart(kiosk_client), "ticket": None})
    kiosk_client.post(url(tenant, "kiosk_summary"), {"method": "cash", "key": key})
    assert Ticket.objects.count() == 1


def test_an_extra_beyond_its_stock_shows_the_error_beside_it(kiosk_client, tenant, cryo, towel):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    for _ in range(2):
        kiosk_client.post(url(tenant, "kiosk_extras"), {"extra": towel.pk, "change": "add"})
    response = kiosk_client.post(
        url(tenant, "kiosk_extras"),
        {"extra": towel.pk, "change": "add"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    row = next(r for r in response.context["rows"] if r["extra"] == towel)
    assert row["quantity"] == 2
    assert row["error"]
    assert f'id="extra-error-{towel.pk}"'.encode() in response.content


def test_a_sold_out_extra_cannot_be_added(kiosk_client, tenant, cryo, towel):
    towel.stock = 0
    towel.save()
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    page = kiosk_client.get(url(tenant, "kiosk_extras"))
    assert next(r for r in page.context["rows"] if r["extra"] == towel)["sold_out"]
    kiosk_client.post(url(tenant, "kiosk_extras"), {"extra": towel.pk, "change": "add"})
    assert kiosk_cart(kiosk_client)["extras"] == {}


def test_an_extra_sold_out_before_paying_sends_back_to_extras_with_the_error(
    kiosk_client, tenant, cryo, towel
):
    fill_cart(kiosk_client, tenant, [cryo], [towel, towel])
    towel.stock = 1  # someone else bought one meanwhile
    towel.save()
    response = buy(kiosk_client, tenant)
    assert response["Location"] == url(tenant, "kiosk_extras")
    assert Ticket.objects.count() == 0
    page = kiosk_client.get(url(tenant, "kiosk_extras"))
    assert "Toalha" in page.content.decode()
    assert next(r for r in page.context["rows"] if r["extra"] == towel)["error"]
    assert [str(m) for m in page.context["messages"]]


def test_an_invalid_cpf_shows_the_error_next_to_the_field(kiosk_client, tenant, cryo):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    response = identify(kiosk_client, tenant, customer_cpf="123.456.789-00")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["customer_cpf"]
    html = response.content.decode()
    error_at = html.index('id="id_customer_cpf-error"')
    assert html.index('id="id_customer_cpf"') < error_at < html.index('id="id_customer_phone"')
    assert errors["customer_cpf"][0] in html[error_at : error_at + 200]
    assert 'aria-invalid="true"' in html


def test_name_and_consent_are_required(kiosk_client, tenant, cryo):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    response = identify(kiosk_client, tenant, customer_name="  ", consent="")
    assert set(response.context["form"].errors) == {"customer_name", "consent"}


def test_only_the_priority_class_is_stored_never_the_reason(kiosk_client, tenant, cryo):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    identify(kiosk_client, tenant, priority="pregnant")
    assert "pregnant" not in str(kiosk_cart(kiosk_client))
    assert "pregnant" not in str(dict(kiosk_client.session))
    buy(kiosk_client, tenant)
    assert Ticket.objects.get().priority == Priority.PRIORITY


def test_eighty_plus_gets_the_first_priority_class(kiosk_client, tenant, cryo):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    identify(kiosk_client, tenant, priority="80")
    buy(kiosk_client, tenant)
    assert Ticket.objects.get().priority == Priority.PRIORITY_80


def test_outside_opening_hours_the_kiosk_says_so_and_sells_nothing(kiosk_client, tenant, cryo):
    tomorrow = (tenant.local_now().weekday() + 1) % 7
    OpeningHours.objects.create(tenant=tenant, weekday=tomorrow, opens=time(8), closes=time(9))
    page = kiosk_client.get(url(tenant, "kiosk_welcome"))
    assert page.context["is_open"] is False
    assert b"touch-to-start" not in page.content
    assert kiosk_client.post(url(tenant, "kiosk_start"))["Location"] == url(tenant, "kiosk_welcome")
    assert not kiosk_cart(kiosk_client)


def test_closing_while_a_customer_chooses_sells_nothing(kiosk_client, tenant, cryo):
    fill_cart(kiosk_client, tenant, [cryo])
    tomorrow = (tenant.local_now().weekday() + 1) % 7
    OpeningHours.objects.create(tenant=tenant, weekday=tomorrow, opens=time(8), closes=time(9))
    response = buy(kiosk_client, tenant)
    assert response["Location"] == url(tenant, "kiosk_services")
    assert Ticket.objects.count() == 0


def test_a_service_without_an_online_device_is_not_sold(kiosk_client, tenant, cryo):
    sauna = make_service(tenant, "Sauna", "S", "90.00", 25, 5)
    kiosk_client.post(url(tenant, "kiosk_start"))
    page = kiosk_client.get(url(tenant, "kiosk_services"))
    option = next(o for o in page.context["options"] if o.service == sauna)
    assert not option.available
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": sauna.pk})
    assert kiosk_cart(kiosk_client)["services"] == []


def test_the_service_list_shows_the_current_wait(kiosk_client, tenant, cryo):
    from tests.conftest import queued_ticket

    for n in range(2):
        queued_ticket(tenant, [cryo], customer_name=f"Cliente {n}")
    kiosk_client.post(url(tenant, "kiosk_start"))
    response = kiosk_client.get(url(tenant, "kiosk_services"), headers={"HX-Request": "true"})
    option = next(o for o in response.context["options"] if o.service == cryo)
    # Two waiting on one device of 10 minutes each: about 20 minutes.
    assert (option.waiting, option.wait_minutes) == (2, 20)
    assert b"<html" not in response.content  # the partial only


def test_a_wait_is_coloured_and_said_by_the_studio_thresholds(kiosk_client, tenant, cryo):
    """A 45-minute wait once showed in green: the panel's thresholds colour it, words say it."""
    from tests.conftest import queued_ticket

    tenant.wait_warning_minutes, tenant.wait_critical_minutes = 10, 30
    tenant.save()
    kiosk_client.post(url(tenant, "kiosk_start"))
    seen = {}
    for waiting in (0, 1, 2, 4):  # one device, 10 min each: 0, 10, 20, 40 min
        while cryo.lines.filter(status="waiting").count() < waiting:
            queued_ticket(tenant, [cryo], customer_name="Cliente")
        page = kiosk_client.get(url(tenant, "kiosk_services"))
        option = next(o for o in page.context["options"] if o.service == cryo)
        shown = " ".join(page.content.decode().split())
        marker = f'class="card-wait wait-{option.wait_level}" data-testid="wait-{cryo.pk}"'
        start = shown.index(marker)
        seen[option.wait_minutes] = (option.wait_level, shown[start : start + 200])
    assert seen[0][0] == "ok" and "Sem espera agora" in seen[0][1]
    assert seen[10][0] == "warning" and "Espera moderada: cerca de 10 min" in seen[10][1]
    assert seen[20][0] == "warning"
    assert seen[40][0] == "critical" and "Espera longa: cerca de 40 min" in seen[40][1]


@pytest.mark.parametrize(("stock", "said"), [(1, "Só resta 1."), (2, "Só restam 2.")])
def test_what_is_left_of_an_extra_is_said_in_good_portuguese(
    kiosk_client, tenant, cryo, towel, stock, said
):
    towel.stock = stock
    towel.save()
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    page = kiosk_client.get(url(tenant, "kiosk_extras")).content.decode()
    assert ("Resta 1" if stock == 1 else "Restam 2") in page
    for _ in range(stock + 1):
        page = kiosk_client.post(
            url(tenant, "kiosk_extras"),
            {"extra": towel.pk, "change": "add"},
            headers={"HX-Request": "true"},
        ).content.decode()
    assert said in page


def test_cancel_purchase_asks_first_and_cancels_only_when_confirmed(
    kiosk_client, tenant, cryo, towel, pix
):
    fill_cart(kiosk_client, tenant, [cryo], [towel])
    buy(kiosk_client, tenant, "pix")
    page = kiosk_client.get(url(tenant, "kiosk_payment")).content.decode()
    # The in-page question, hidden until the button is touched (with script).
    assert 'id="cancel-dialog"' in page and "Sim, cancelar" in page and "Não, voltar" in page
    # Without script, the first POST answers with the question as a page; nothing is cancelled.
    asked = kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "cancel"})
    assert asked.status_code == 200
    assert "Cancelar esta compra?" in asked.content.decode()
    assert Ticket.objects.get().status == T.PENDING_PAYMENT
    # "Não, voltar" is a link back to the payment, which is still there.
    assert kiosk_client.get(url(tenant, "kiosk_payment")).context["state"] == "pix"
    done = kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "cancel", "confirm": "1"})
    assert done["Location"] == url(tenant, "kiosk_welcome")
    assert Ticket.objects.get().status == T.CANCELLED
    towel.refresh_from_db()
    assert towel.stock == 2


def test_abandoning_cancels_the_ticket_and_returns_the_stock(
    kiosk_client, tenant, cryo, towel, pix
):
    fill_cart(kiosk_client, tenant, [cryo], [towel, towel])
    buy(kiosk_client, tenant, "pix")
    towel.refresh_from_db()
    assert towel.stock == 0
    page = kiosk_client.get(url(tenant, "kiosk_payment"))
    assert page.context["state"] == "pix"
    assert page.context["session"].qr_code.encode() in page.content

    response = kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "idle"})
    assert response["Location"] == url(tenant, "kiosk_welcome")
    ticket = Ticket.objects.get()
    assert ticket.status == T.CANCELLED
    assert PaymentSession.objects.get().status == SessionStatus.CANCELED
    towel.refresh_from_db()
    assert towel.stock == 2


def test_the_back_button_after_purchase_does_not_buy_again(kiosk_client, tenant, cryo, towel):
    fill_cart(kiosk_client, tenant, [cryo], [towel])
    key = cart_key(kiosk_client, tenant)
    buy(kiosk_client, tenant)
    for step in ("kiosk_services", "kiosk_extras", "kiosk_identify", "kiosk_summary"):
        response = kiosk_client.get(url(tenant, step))
        assert response["Location"] == url(tenant, "kiosk_payment"), step
    again = kiosk_client.post(url(tenant, "kiosk_summary"), {"method": "cash", "key": key})
    assert again["Location"] == url(tenant, "kiosk_payment")
    kiosk_client.post(url(tenant, "kiosk_extras"), {"extra": towel.pk, "change": "add"})
    # After finishing, the old summary page posts into nothing.
    kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "done"})
    late = kiosk_client.post(url(tenant, "kiosk_summary"), {"method": "cash", "key": key})
    assert late["Location"] == url(tenant, "kiosk_welcome")
    assert Ticket.objects.count() == 1
    assert Ticket.objects.get().extras.get().quantity == 1


def test_a_summary_page_from_an_earlier_purchase_never_buys(kiosk_client, tenant, cryo):
    fill_cart(kiosk_client, tenant, [cryo])
    old_key = cart_key(kiosk_client, tenant)
    kiosk_client.post(url(tenant, "kiosk_leave"), {"reason": "cancel"})
    fill_cart(kiosk_client, tenant, [cryo])
    response = kiosk_client.post(url(tenant, "kiosk_summary"), {"method": "cash", "key": old_key})
    assert response["Location"] == url(tenant, "kiosk_summary")
    assert Ticket.objects.count() == 0


def test_a_paid_pix_moves_on_to_the_ticket_screen(kiosk_client, tenant, cryo, pix, alice):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    status = kiosk_client.get(url(tenant, "kiosk_payment_status"), headers={"HX-Request": "true"})
    assert status.status_code == 200 and "HX-Redirect" not in status
    confirm_static_pix(tenant, PaymentSession.objects.get().pk, alice)
    status = kiosk_client.get(url(tenant, "kiosk_payment_status"), headers={"HX-Request": "true"})
    assert status["HX-Redirect"] == url(tenant, "kiosk_ticket")
    page = kiosk_client.get(url(tenant, "kiosk_ticket"))
    ticket = Ticket.objects.get()
    assert ticket.number.encode() in page.content
    assert page.context["lines"][0]["place"].position == 1
    assert page.context["status_url"].endswith(f"/t/{tenant.slug}/senha/{ticket.token}/")
    assert b"<svg" in page.content
    # The payment screen now shows the ticket, never a new payment.
    assert kiosk_client.get(url(tenant, "kiosk_payment"))["Location"] == url(tenant, "kiosk_ticket")


def test_the_payment_screen_asks_mercadopago_at_most_once_per_window(
    kiosk_client, tenant, cryo, fake, mp
):
    """The screen polls every 3 s; the provider is asked for a webhook that never came only
    once per PROVIDER_CHECK_SECONDS per payment (the fake MercadoPago counts the calls)."""
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    session = PaymentSession.objects.get()

    def poll():
        return kiosk_client.get(url(tenant, "kiosk_payment_status"), headers={"HX-Request": "true"})

    def asked() -> int:
        return sum(1 for m, path, _h in fake.requests if m == "GET" and "/v1/payments/" in path)

    for _ in range(4):
        assert "HX-Redirect" not in poll()
    assert asked() == 1
    fake.approve(session.external_id, notify=False)  # paid; the webhook is lost
    assert "HX-Redirect" not in poll()  # within the window: the database only
    assert asked() == 1
    cache.delete(f"provider-check:{session.pk}")  # the window has passed
    assert poll()["HX-Redirect"] == url(tenant, "kiosk_ticket")
    assert asked() == 2


def test_a_failed_payment_offers_to_try_again_or_pay_another_way(kiosk_client, tenant, cryo, pix):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    PaymentSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = kiosk_client.get(url(tenant, "kiosk_payment"))
    assert page.context["state"] == "expired"
    assert b'data-testid="pay-pix"' in page.content and b'data-testid="pay-cash"' in page.content
    kiosk_client.post(url(tenant, "kiosk_payment"), {"method": "cash"})
    assert kiosk_client.get(url(tenant, "kiosk_payment")).context["state"] == "cash"
    assert Ticket.objects.count() == 1
    assert PaymentSession.objects.filter(status=SessionStatus.PENDING).get().method == "cash"


def test_a_server_error_shows_the_friendly_screen(kiosk_client, tenant, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    kiosk_client.post(url(tenant, "kiosk_start"))
    monkeypatch.setattr(kiosk, "service_options", broken)
    kiosk_client.raise_request_exception = False
    response = kiosk_client.get(url(tenant, "kiosk_services"))
    assert response.status_code == 500
    assert [t.name for t in response.templates] == ["kiosk/error.html"]
    assert b"database on fire" not in response.content
    assert f"url={url(tenant, 'kiosk_welcome')}".encode() in response.content
    htmx = kiosk_client.get(url(tenant, "kiosk_services"), headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == url(tenant, "kiosk_error")


@pytest.mark.postgres
def test_two_taps_racing_on_pay_create_one_ticket_and_one_payment(
    transactional_db, tenant, kiosk_device, machines, cryo, pix
):
    client = Client()
    pair(client, tenant, kiosk_device)
    fill_cart(client, tenant, [cryo])
    key = cart_key(client, tenant)
    barrier = threading.Barrier(2)
    answers = []

    def tap() -> None:
        racer = Client()
        racer.cookies = client.cookies
        barrier.wait()
        answers.append(racer.post(url(tenant, "kiosk_summary"), {"method": "pix", "key": key}))
        connection.close()

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a["Location"] for a in answers] == [url(tenant, "kiosk_payment")] * 2
    assert Ticket.objects.count() == 1
    assert PaymentSession.objects.filter(status=SessionStatus.PENDING).count() == 1


def test_each_screen_gets_its_inactivity_timeout(kiosk_client, tenant, cryo, pix, settings):
    settings.KIOSK_IDLE_SECONDS = 111
    settings.KIOSK_PAYMENT_IDLE_SECONDS = 222
    settings.KIOSK_DONE_SECONDS = 33
    settings.KIOSK_IDLE_WARNING_SECONDS = 44
    settings.KIOSK_PERSONAL_IDLE_SECONDS = 30
    settings.KIOSK_PERSONAL_WARNING_SECONDS = 10
    welcome = kiosk_client.get(url(tenant, "kiosk_welcome"))
    assert b'data-idle-seconds="0"' in welcome.content  # the welcome screen is the idle state
    kiosk_client.post(url(tenant, "kiosk_start"))
    services = kiosk_client.get(url(tenant, "kiosk_services")).content
    assert b'data-idle-seconds="111"' in services and b'data-warning-seconds="44"' in services
    fill_cart(kiosk_client, tenant, [cryo])
    # The form gets both: kiosk.js takes the short one once something is typed in.
    identify = kiosk_client.get(url(tenant, "kiosk_identify")).content
    assert b'data-idle-seconds="111"' in identify
    assert b'data-personal-idle-seconds="20" data-personal-warning-seconds="10"' in identify
    # The summary shows the name: 30 s after the last touch, warning included, it is gone.
    summary = kiosk_client.get(url(tenant, "kiosk_summary")).content
    assert b'data-idle-seconds="20"' in summary and b'data-warning-seconds="10"' in summary
    buy(kiosk_client, tenant, "pix")
    assert b'data-idle-seconds="222"' in kiosk_client.get(url(tenant, "kiosk_payment")).content
    kiosk_client.post(url(tenant, "kiosk_payment"), {"method": "cash"})
    cash = kiosk_client.get(url(tenant, "kiosk_payment")).content
    assert b'data-idle-seconds="33"' in cash and b'data-warning-seconds="0"' in cash


def test_a_kiosk_flooding_the_server_is_held_back_with_a_friendly_screen(
    kiosk_client, tenant, settings
):
    settings.KIOSK_REQUESTS_PER_MINUTE = 5
    url = reverse("kiosk_welcome", args=[tenant.slug])
    responses = [kiosk_client.get(url) for _ in range(7)]
    assert [r.status_code for r in responses] == [200] * 5 + [429, 429]
    assert reverse("kiosk_welcome", args=[tenant.slug]) in responses[-1].content.decode()
    # A tap through HTMX (which swaps nothing on a 429) sends the whole screen there too.
    tap = kiosk_client.get(url, headers={"HX-Request": "true"})
    assert tap["HX-Redirect"] == reverse("kiosk_error", args=[tenant.slug])


def test_cpf_and_phone_are_hidden_from_error_reports(kiosk_client, tenant, cryo):
    from django.views.debug import SafeExceptionReporterFilter

    fill_cart(kiosk_client, tenant, [cryo])
    response = identify(kiosk_client, tenant)
    # What an error report (e-mail to admins, Sentry) would show of this request's form.
    shown = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert shown["customer_cpf"] == shown["customer_phone"] == "********************"
    assert shown["customer_name"] == "Maria Souza"


def test_a_service_gone_off_sale_before_paying_is_refused_by_the_sale_and_leaves_the_cart(
    kiosk_client, tenant, cryo, boots, machines
):
    fill_cart(kiosk_client, tenant, [cryo, boots])
    crio_1 = machines[0]
    crio_1.status = "maintenance"
    crio_1.save()

    response = buy(kiosk_client, tenant)

    assert response["Location"].endswith("/servicos/")
    assert kiosk_cart(kiosk_client)["services"] == [boots.pk]
    assert not Ticket.objects.exists()
    page = kiosk_client.get(response["Location"])
    assert "Escolha pelo menos um serviço disponível." in page.content.decode()


def test_a_purchase_with_nothing_to_pay_skips_payment_and_calls_no_provider(
    kiosk_client, tenant, fake, mp
):
    free = make_service(tenant, "Avaliação", "A", "0.00")
    make_device(tenant, "Avaliação 1", [free])
    fill_cart(kiosk_client, tenant, [free])
    page = kiosk_client.get(url(tenant, "kiosk_summary")).content.decode()
    assert 'data-testid="free-ticket"' in page and 'data-testid="pay-' not in page
    response = kiosk_client.post(
        url(tenant, "kiosk_summary"), {"key": cart_key(kiosk_client, tenant)}
    )
    assert response["Location"] == url(tenant, "kiosk_ticket")
    ticket = Ticket.objects.get()
    assert ticket.total == 0 and ticket.status == T.IN_QUEUE
    assert kiosk_client.get(url(tenant, "kiosk_ticket")).status_code == 200
    assert not PaymentSession.objects.exists()
    assert AuditLog.objects.filter(action="free_ticket", entity_id=str(ticket.pk)).count() == 1
    assert fake.requests == []


# --- the demo's simulated payments and the live payment screen --------------------------------


def test_the_demo_buttons_show_only_against_the_fake_and_their_endpoints_404_otherwise(
    kiosk_client, tenant, cryo, fake, mp, settings
):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    session = PaymentSession.objects.get()
    page = kiosk_client.get(url(tenant, "kiosk_payment")).content.decode()
    assert 'data-testid="demo"' in page and "Demonstração" in page
    assert "Simular pagamento" in page and "Simular recusa" in page

    settings.MERCADOPAGO_BASE_URL = "https://api.mercadopago.com"  # production
    page = kiosk_client.get(url(tenant, "kiosk_payment")).content.decode()
    assert "Demonstração" not in page and "Simular" not in page and "simular" not in page
    simulate = url(tenant, "kiosk_payment_simulate")
    assert kiosk_client.post(simulate, {"outcome": "approve"}).status_code == 404
    direct = f"/t/{tenant.slug}/pagamentos/{session.pk}/simular/"
    assert kiosk_client.post(direct, {"outcome": "approve"}).status_code == 404
    assert fake.payments[session.external_id]["status"] == "pending"


def test_the_demo_buttons_are_not_offered_for_a_payment_the_fake_does_not_hold(
    kiosk_client, tenant, cryo, pix, fake
):
    # Static PIX: confirmed by an operator, never by MercadoPago, even in demo mode.
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    assert b'data-testid="demo"' not in kiosk_client.get(url(tenant, "kiosk_payment")).content
    response = kiosk_client.post(url(tenant, "kiosk_payment_simulate"), {"outcome": "approve"})
    assert response["Location"] == url(tenant, "kiosk_payment")
    assert PaymentSession.objects.get().status == SessionStatus.PENDING


@pytest.mark.parametrize(("outcome", "status"), [("approve", "approved"), ("refuse", "rejected")])
def test_a_demo_button_asks_the_fake_for_this_purchases_payment_only(
    kiosk_client, tenant, cryo, fake, mp, outcome, status
):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    session = PaymentSession.objects.get()
    simulate = url(tenant, "kiosk_payment_simulate")
    # The screen's tap (htmx): nothing to swap; the screen moves on when the fake's webhook
    # has been handled. Without htmx, back to the payment screen.
    tapped = kiosk_client.post(simulate, {"outcome": outcome}, headers={"HX-Request": "true"})
    assert tapped.status_code == 204
    assert fake.payments[session.external_id]["status"] == status
    assert PaymentSession.objects.get().status == SessionStatus.PENDING  # no webhook yet
    assert kiosk_client.post(simulate, {"outcome": outcome})["Location"] == url(
        tenant, "kiosk_payment"
    )


def test_a_demo_button_says_so_when_the_fake_is_not_running(
    kiosk_client, tenant, cryo, fake, mp, settings
):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    settings.MERCADOPAGO_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    kiosk_client.post(url(tenant, "kiosk_payment_simulate"), {"outcome": "approve"})
    page = kiosk_client.get(url(tenant, "kiosk_payment")).content.decode()
    assert "Não foi possível simular o pagamento de demonstração" in page
    assert PaymentSession.objects.get().status == SessionStatus.PENDING


@pytest.mark.parametrize("method", ["pix", "cash"])
def test_the_payment_screen_listens_on_its_tickets_socket(
    kiosk_client, tenant, cryo, pix, method, settings
):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, method)
    ticket = Ticket.objects.get()
    page = kiosk_client.get(url(tenant, "kiosk_payment"))
    assert page.context["live"] == {
        "socket": f"/ws/t/{tenant.slug}/senha/{ticket.token}/",
        "ticket": ticket.pk,
    }
    html = page.content.decode()
    assert 'id="payment-live"' in html and "js/live.js" in html and "kiosk/payment.js" in html
    # PIX also re-reads on its own, slowly: the fallback while the socket is down.
    poll = f", every {settings.KIOSK_PAYMENT_POLL_SECONDS}s" if method == "pix" else ""
    assert f'hx-trigger="payment-changed{poll}"' in html


def test_a_failed_payment_screen_listens_to_nothing(kiosk_client, tenant, cryo, pix):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    PaymentSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = kiosk_client.get(url(tenant, "kiosk_payment"))
    assert page.context["live"] is None and b"payment-live" not in page.content


def test_the_ticket_screen_chimes_once_per_purchase(kiosk_client, tenant, cryo, pix, alice):
    fill_cart(kiosk_client, tenant, [cryo])
    buy(kiosk_client, tenant, "pix")
    confirm_static_pix(tenant, PaymentSession.objects.get().pk, alice)
    first = kiosk_client.get(url(tenant, "kiosk_ticket"))
    assert b'data-sound="paid"' in first.content and b"js/sound.js" in first.content
    assert b"data-sound" not in kiosk_client.get(url(tenant, "kiosk_ticket")).content


def test_a_cart_naming_another_tenants_ticket_finds_nothing(
    kiosk_client, tenant, other_tenant, cryo
):
    """The cart's ticket is read within the kiosk's tenant (a statement built once, the
    tenant's id bound each time): another tenant's ticket is not this purchase's."""
    theirs = make_ticket(other_tenant, [make_service(other_tenant, "Sauna", "S")])
    mine = make_ticket(tenant, [cryo])
    set_kiosk_cart(kiosk_client, {"key": "k", "services": [cryo.pk], "ticket": theirs.pk})
    assert kiosk_client.get(url(tenant, "kiosk_payment"))["Location"] == url(
        tenant, "kiosk_welcome"
    )
    set_kiosk_cart(kiosk_client, {"key": "k", "services": [cryo.pk], "ticket": mine.pk})
    assert kiosk_client.get(url(tenant, "kiosk_payment")).status_code == 200
