"""Joining the queue from the phone: the QR poster's page sells a ticket like the kiosk, marked
remote, behind the tenant's switch, pause and limits; in Chromium at a phone's 390×844."""

from __future__ import annotations

import tempfile
import threading
from datetime import time
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from equipment.models import Equipment
from messaging import remote
from messaging.models import RemoteJoin, RemoteTicket, Subscription, WhatsAppAccount
from payments.models import PaymentSession, PaymentSettings
from tenants.errors import DomainError
from tenants.models import OpeningHours
from tests import daphne_server
from tests.accessibility import assert_accessible
from tests.conftest import CHROMIUM, REQUIRE_SERVERS, make_device
from tickets.models import Ticket, TicketStatus
from totem.consent import CONSENT_VERSION

PHONE = {"width": 390, "height": 844}
# The ticket's page opens its socket: a real Daphne serves it (the live server has none).
daphne = daphne_server.daphne


@pytest.fixture
def studio(tenant, cryo):
    make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    return RemoteJoin.objects.create(tenant=tenant, enabled=True, pay_at_counter=True)


def join(tenant, service, phone="11987654321", ip="203.0.113.7", key=""):
    return remote.join(
        tenant,
        service_ids=[service.pk],
        customer_name="Ana Lima",
        phone=phone,
        ip=ip,
        consent_version=CONSENT_VERSION,
        idempotency_key=key,
    )


def test_a_ticket_from_the_phone_joins_the_queue_marked_remote(client, tenant, cryo, studio):
    url = reverse("join", args=[tenant.slug])
    page = client.get(url).content.decode()
    assert "Crioterapia" in page and "Pagar no balcão" in page
    answer = client.post(
        url,
        {
            "services": [cryo.pk],
            "customer_name": "Ana Lima",
            "customer_phone": "(11) 98765-4321",
            "method": "cash",
            "consent": "on",
            "key": "k1",
        },
    )
    ticket = Ticket.objects.get()
    assert answer["Location"] == reverse("ticket_status", args=[tenant.slug, ticket.token])
    assert RemoteTicket.objects.filter(ticket=ticket).exists()
    assert (ticket.customer_phone, ticket.consent_version) == ("11987654321", CONSENT_VERSION)
    assert PaymentSession.objects.get(ticket=ticket).method == "cash"


def test_a_ticket_from_the_phone_is_digital_even_where_the_studio_prints(tenant, cryo, studio):
    """Its customer may still be on the way: once paid it goes to the queue, not to a paper
    nobody takes at the studio's printer, which still prints the kiosk's tickets. The panel
    reprints it when asked (the customer at the desk wants a paper)."""
    from equipment.models import PrintJob
    from tests.conftest import make_ticket
    from tests.test_printing import make_printer, pay
    from tickets.printing import reprint

    make_printer(tenant)
    phone = pay(join(tenant, cryo))
    kiosk = pay(make_ticket(tenant, [cryo]))

    assert (phone.channel, phone.status) == ("phone", TicketStatus.IN_QUEUE)
    assert (kiosk.channel, kiosk.status) == ("kiosk", TicketStatus.PRINTING)
    assert list(PrintJob.objects.values_list("ticket", flat=True)) == [kiosk.pk]
    assert reprint(tenant, phone.pk).ticket == phone


def test_pix_on_the_phone_shows_the_copia_e_cola(client, tenant, cryo, studio):
    answer = client.post(
        reverse("join", args=[tenant.slug]),
        {
            "services": [cryo.pk],
            "customer_name": "Ana Lima",
            "customer_phone": "11987654321",
            "method": "pix",
            "consent": "on",
            "key": "k2",
        },
        follow=True,
    )
    session = PaymentSession.objects.get()
    assert session.method == "pix"
    assert session.qr_code in answer.content.decode()


def test_the_front_desk_is_offered_only_when_the_studio_allows_it(client, tenant, cryo, studio):
    studio.pay_at_counter = False
    studio.save()
    page = client.get(reverse("join", args=[tenant.slug])).content.decode()
    assert "Pagar no balcão" not in page and 'value="pix"' in page


def test_a_studio_that_does_not_take_phones_or_paused_sells_nothing(client, tenant, cryo, studio):
    studio.paused = True
    studio.save()
    assert "pausada" in client.get(reverse("join", args=[tenant.slug])).content.decode()
    with pytest.raises(DomainError):
        join(tenant, cryo)
    studio.enabled = False
    studio.save()
    with pytest.raises(DomainError):
        join(tenant, cryo)
    assert not Ticket.objects.exists()


def test_a_phone_number_gets_its_daily_tickets_and_no_more(tenant, cryo, boots, studio):
    make_device(tenant, "Botas 1", [boots])
    join(tenant, cryo)
    join(tenant, boots)
    with pytest.raises(DomainError, match="phone number|celular"):
        join(tenant, cryo)
    assert RemoteTicket.objects.count() == 2


def test_one_address_is_held_to_its_hourly_tickets(tenant, cryo, studio):
    studio.per_ip_per_hour = 2
    studio.save()
    join(tenant, cryo, phone="11900000001")
    join(tenant, cryo, phone="11900000002")
    with pytest.raises(DomainError):
        join(tenant, cryo, phone="11900000003")
    join(tenant, cryo, phone="11900000003", ip="198.51.100.1")  # another address


def test_at_most_max_waiting_remote_tickets_are_open_at_once(tenant, cryo, studio):
    studio.max_waiting = 1
    studio.save()
    first = join(tenant, cryo, phone="11900000001")
    with pytest.raises(DomainError, match="full|cheia"):
        join(tenant, cryo, phone="11900000002")
    Ticket.objects.filter(pk=first.pk).update(status=TicketStatus.CANCELLED)
    join(tenant, cryo, phone="11900000002")


def test_opening_hours_apply_to_phones_too(tenant, cryo, studio):
    from django.core.exceptions import ValidationError

    closed_day = (tenant.local_now().weekday() + 1) % 7
    OpeningHours.objects.create(tenant=tenant, weekday=closed_day, opens=time(8), closes=time(9))
    with pytest.raises(ValidationError):
        join(tenant, cryo)


def test_a_double_submit_makes_one_ticket(tenant, cryo, studio):
    assert join(tenant, cryo, key="same").pk == join(tenant, cryo, key="same").pk
    assert RemoteTicket.objects.count() == 1


def test_the_whatsapp_opt_in_from_the_phone_is_recorded(client, tenant, cryo, studio):
    WhatsAppAccount.objects.create(
        tenant=tenant, enabled=True, phone_number_id="123456", access_token="t"
    )
    client.post(
        reverse("join", args=[tenant.slug]),
        {
            "services": [cryo.pk],
            "customer_name": "Ana Lima",
            "customer_phone": "11987654321",
            "method": "cash",
            "consent": "on",
            "whatsapp": "on",
            "key": "k3",
        },
    )
    assert Subscription.objects.get().phone == "11987654321"


def test_the_poster_prints_the_join_address_as_a_qr(client, tenant, studio, settings):
    page = client.get(reverse("join_poster", args=[tenant.slug])).content.decode()
    assert f"{settings.PUBLIC_BASE_URL}/t/{tenant.slug}/entrar/" in page and "<svg" in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_joins_never_pass_the_last_free_place(tenant, cryo):
    make_device(tenant, "Crio 1", [cryo])
    PaymentSettings.objects.create(tenant=tenant)
    RemoteJoin.objects.create(tenant=tenant, enabled=True, max_waiting=1)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def customer(n):
        try:
            barrier.wait()
            join(tenant, cryo, phone=f"119000000{n:02d}", ip=f"203.0.113.{n}")
            outcomes.append("joined")
        except DomainError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=customer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["joined"] + ["refused"] * 5
    assert RemoteTicket.objects.count() == 1


# --- in Chromium, at a phone's size ------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not REQUIRE_SERVERS,
    reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)",
)
@pytest.mark.django_db(transaction=True)
def test_a_customer_joins_from_the_phone_in_a_real_browser(browser, daphne, tenant, cryo):
    make_device(tenant, "Crio 1", [cryo], location="Sala 1")
    PaymentSettings.objects.create(
        tenant=tenant,
        pix_key="studio@example.com",
        merchant_name="Studio",
        merchant_city="Sao Paulo",
    )
    RemoteJoin.objects.create(tenant=tenant, enabled=True, pay_at_counter=True)
    shots = Path(tempfile.mkdtemp(prefix="remote-join-"))
    print(f"\nremote join screenshots: {shots}")
    context = browser.new_context(viewport=PHONE, has_touch=True, locale="pt-BR")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"http://{daphne}/t/{tenant.slug}/entrar/")
    page.get_by_role("heading", name="Entrar na fila").wait_for()
    page.screenshot(path=shots / "01-join.png", full_page=True)
    assert_accessible(page, "remote join")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_label("Crioterapia").check()
    page.get_by_label("Seu nome").fill("Ana Lima")
    page.get_by_label("Celular").fill("(11) 98765-4321")
    page.get_by_label("Pagar no balcão").check()
    page.get_by_label("Li e concordo").check()
    page.screenshot(path=shots / "02-filled.png", full_page=True)
    page.get_by_role("button", name="Retirar minha senha").tap()

    page.get_by_test_id("pay-at-counter").wait_for()
    page.wait_for_selector("body[data-live='open']")
    page.screenshot(path=shots / "03-ticket.png", full_page=True)
    assert_accessible(page, "remote ticket")
    ticket = Ticket.objects.get()
    assert page.url.endswith(f"/t/{tenant.slug}/senha/{ticket.token}/")
    assert RemoteTicket.objects.filter(ticket=ticket).exists()

    # Another customer pays by PIX on the phone: the copia e cola, then the ticket's page.
    page.goto(f"http://{daphne}/t/{tenant.slug}/entrar/")
    page.get_by_label("Crioterapia").check()
    page.get_by_label("Seu nome").fill("Bruno Reis")
    page.get_by_label("Celular").fill("21998887777")
    page.get_by_label("PIX").check()
    page.get_by_label("Li e concordo").check()
    page.get_by_role("button", name="Retirar minha senha").tap()
    page.get_by_label("PIX copia e cola").wait_for()
    page.screenshot(path=shots / "04-pix.png", full_page=True)
    assert_accessible(page, "remote pix")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert problems == []
    context.close()


# --- the ticket's page as companion: "estou chegando", "desisti" ------------------------------


def test_on_my_way_shows_on_the_panel_and_giving_up_frees_the_place(
    client, tenant, cryo, boots, studio, alice
):
    from tests.conftest import queued_ticket
    from tickets.queue import place_of

    ticket = queued_ticket(tenant, [cryo, boots])
    behind = queued_ticket(tenant, [cryo])
    page = client.get(reverse("ticket_status", args=[tenant.slug, ticket.token])).content.decode()
    assert "Estou chegando" in page and "Desisti" in page
    client.post(reverse("ticket_arriving", args=[tenant.slug, ticket.token]))
    page = client.get(reverse("ticket_status", args=[tenant.slug, ticket.token])).content.decode()
    assert "O estúdio já sabe que você está a caminho." in page

    # Without the second tap nothing leaves the queue.
    client.post(reverse("ticket_give_up", args=[tenant.slug, ticket.token]))
    assert ticket.lines.filter(status="waiting").count() == 2
    client.post(reverse("ticket_give_up", args=[tenant.slug, ticket.token]), {"confirm": "1"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CANCELLED
    assert set(ticket.lines.values_list("status", flat=True)) == {"cancelled"}
    line = behind.lines.get()
    assert place_of(line).position == 1
    page = client.get(reverse("ticket_status", args=[tenant.slug, ticket.token])).content.decode()
    assert 'data-testid="companion"' not in page


def test_the_panel_marks_tickets_from_the_phone_and_on_the_way(client, tenant, cryo, studio, alice):
    from django.db import transaction

    from messaging import companion
    from tests.conftest import queued_ticket
    from tests.test_panel import panel_url, pick_station
    from tickets.printing import mark_paid

    station = Equipment.objects.get(tenant=tenant, name="Crio 1")
    ticket = join(tenant, cryo)
    with transaction.atomic():
        mark_paid(Ticket.objects.select_for_update().get(pk=ticket.pk))
    queued_ticket(tenant, [cryo])  # from the kiosk: no badge
    client.force_login(alice)
    pick_station(client, tenant, station)
    page = client.get(panel_url(tenant)).content.decode()
    assert page.count('data-testid="remote"') == 1 and 'data-testid="arriving"' not in page
    ticket.refresh_from_db()
    companion.on_my_way(ticket)
    page = client.get(panel_url(tenant)).content.decode()
    assert "Pelo celular" in page and "A caminho" in page
