"""Revoking a device ends it within seconds: a display's open socket is closed by the server
(4401, so the TV's page reloads into the pairing screen), a kiosk's next request goes to the
pairing screen. Against real Daphne processes, PostgreSQL and Redis.

Two Daphnes: on `told` the periodic re-check is ten minutes away, so a socket closed within
seconds there was closed by the message the revoke sends; on `rechecking` it runs every
second, and the tests there send no message at all.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidStatus

from equipment.models import Equipment, Kind
from tenants.models import Tenant
from tests import daphne_server
from tests.conftest import make_device
from tests.test_realtime import cookie_header, display_client, pairing_cookies, wait_for
from tickets import events
from tickets.live import REVOKED
from totem import pairing
from totem.access import display_device
from totem.models import PairingCode

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# What "within seconds" means here; the re-check of `rechecking` is 1 s.
BOUND = 5


@pytest.fixture(scope="module")
def told(django_db_setup, django_db_blocker) -> Iterator[str]:
    extra = {"DEVICE_RECHECK_SECONDS": "600"}
    for servers in daphne_server.serve(1, django_db_blocker, extra_env=extra):
        yield servers[0].address


@pytest.fixture(scope="module")
def rechecking(django_db_setup, django_db_blocker) -> Iterator[str]:
    extra = {"DEVICE_RECHECK_SECONDS": "1"}
    for servers in daphne_server.serve(1, django_db_blocker, extra_env=extra):
        yield servers[0].address


@pytest.fixture
def tv(tenant) -> Equipment:
    return make_device(tenant, "TV da recepção", kind=Kind.DISPLAY)


def close_code(client) -> int:
    """The code the server closes `client` with, within BOUND seconds (events before it skipped)."""
    deadline = time.monotonic() + BOUND
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            client.recv(timeout=max(deadline - time.monotonic(), 0.01))
    return closed.value.rcvd.code if closed.value.rcvd else 0


def admin_action(user, model: str, action: str, rows) -> None:
    client = Client()
    client.force_login(user)
    response = client.post(
        f"/admin/{model}/",
        {"action": action, "_selected_action": [row.pk for row in rows], "index": 0},
    )
    assert response.status_code == 302


def test_revoking_a_pairing_in_admin_closes_that_browsers_socket_and_no_other(
    told, tenant, tv, bob
):
    revoked_cookies = pairing_cookies(tv)
    other_browser = pairing_cookies(tv)  # a second browser paired as the same TV
    revoked = PairingCode.objects.filter(equipment=tv).order_by("pk").first()

    with (
        display_client(told, tenant.slug, revoked_cookies) as closing,
        display_client(told, tenant.slug, other_browser) as staying,
    ):
        admin_action(bob, "totem/pairingcode", "revoke", [revoked])

        assert close_code(closing) == REVOKED
        events.publish("queue_update", tenant_id=tenant.id)
        assert wait_for(staying, "queue_update")
    # Reconnecting is refused at the handshake: the cookie pairs nothing any more.
    with (
        pytest.raises(InvalidStatus, match="403"),
        display_client(told, tenant.slug, revoked_cookies),
    ):
        pass


def test_soft_deleting_a_display_in_admin_closes_its_sockets(told, tenant, tv, bob):
    with display_client(told, tenant.slug, pairing_cookies(tv)) as client:
        admin_action(bob, "equipment/equipment", "soft_delete", [tv])

        assert close_code(client) == REVOKED


@pytest.mark.parametrize(
    "unpair",
    [
        # As if the revoke's message were lost (Redis down at that moment): no message at all.
        lambda tenant, tv: PairingCode.objects.filter(equipment=tv).update(
            revoked_at=timezone.now()
        ),
        # A tenant switched off sends nothing (the base app knows no device).
        lambda tenant, tv: Tenant.objects.filter(pk=tenant.pk).update(is_active=False),
    ],
    ids=["revoked-message-lost", "tenant-switched-off"],
)
def test_a_display_unpaired_without_a_message_is_closed_by_its_recheck(
    rechecking, tenant, tv, unpair
):
    with display_client(rechecking, tenant.slug, pairing_cookies(tv)) as client:
        unpair(tenant, tv)

        assert close_code(client) == REVOKED


def test_a_display_still_paired_keeps_its_socket_through_rechecks(rechecking, tenant, tv):
    with display_client(rechecking, tenant.slug, pairing_cookies(tv)) as client:
        time.sleep(2.5)  # two re-checks at least
        events.publish("queue_update", tenant_id=tenant.id)
        assert wait_for(client, "queue_update")


def test_a_recheck_costs_one_query(tenant, tv, django_assert_num_queries):
    cookies = pairing_cookies(tv)
    assert display_device(tenant, cookies) == tv  # the first also stamps the device as seen

    with django_assert_num_queries(1):
        assert display_device(tenant, cookies) == tv


def kiosk_get(address: str, path: str, cookies: dict[str, str], **headers: str):
    connection = http.client.HTTPConnection(address, timeout=10)
    connection.request("GET", path, headers={"Cookie": cookie_header(cookies), **headers})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_revoked_kiosks_next_request_goes_to_the_pairing_screen(told, tenant):
    # The kiosk has no socket: its screens poll over HTMX, each poll checking its pairing.
    kiosk = make_device(tenant, "Totem 1", kind=Kind.KIOSK)
    cookies = pairing_cookies(kiosk)
    welcome = f"/t/{tenant.slug}/totem/"
    pairing_screen = f"/t/{tenant.slug}/totem/parear/"
    assert kiosk_get(told, welcome, cookies).status == 200

    pairing.revoke(PairingCode.objects.filter(equipment=kiosk))

    poll = kiosk_get(told, welcome, cookies, **{"HX-Request": "true"})
    assert (poll.status, poll.getheader("HX-Redirect").split("?")[0]) == (204, pairing_screen)
    page = kiosk_get(told, welcome, cookies)
    assert (page.status, page.getheader("Location").split("?")[0]) == (302, pairing_screen)


def test_a_revoke_tells_the_sockets_only_once_committed_and_counts_each_pairing_once(
    tenant, tv, monkeypatch
):
    told_groups = []
    monkeypatch.setattr(events, "_notify", lambda groups, message: told_groups.append(groups))
    pairing_cookies(tv)
    pairings = PairingCode.objects.filter(equipment=tv)

    with pytest.raises(RuntimeError), transaction.atomic():
        pairing.revoke(pairings)
        raise RuntimeError("rolled back")
    assert (told_groups, pairings.filter(revoked_at__isnull=False).count()) == ([], 0)

    assert pairing.revoke(pairings) == 1
    assert pairing.revoke(pairings) == 0
    assert told_groups == [[events.device_group(tv.pk)]]
