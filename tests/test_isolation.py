"""Tenant isolation everywhere: every URL and WebSocket route, generated from the URL conf
and the ASGI router so a new view cannot be forgotten, tried by an anonymous visitor, an
operator of another tenant and an operator without the needed role.

A route is either scoped to members (refused: login redirect, 403 or 404) or listed in
PUBLIC with the reason it may answer strangers — and then it must still show nothing of
another tenant and no personal data.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from config.routing import websocket_urlpatterns
from tenants.models import Membership, Role
from tests.conftest import make_device, make_service, queued_ticket

# Routes that answer without a tenant membership, and why each is safe.
PUBLIC = {
    "login": "the way in",
    "logout": "the way out",
    "password_reset": "Django's reset flow; answers nothing about tenants",
    "password_reset_done": "static page",
    "password_reset_confirm": "needs the signed token from the e-mail",
    "password_reset_complete": "static page",
    "panel_home": "sends a visitor to login, a member to their studio (dashboard or panel)",
    "metrics": "bearer token (METRICS_TOKEN); 401 without it",
    "payments_webhook_mercadopago": "verified by the provider's signature; 401 without it",
    "payments_receipt": "by the ticket's unguessable token, within its own tenant only",
    "payments_receipt_pdf": "the same receipt as a PDF: the same token, the same rule",
    "ticket_status": "by the ticket's unguessable token, within its own tenant only",
    "display": "the public TV: numbers, services and rooms, never a person",
    "display_state": "the public TV's state: as above",
    "kiosk_welcome": "an unpaired browser sees only the pairing screen",
    "kiosk_pair": "takes a one-time pairing code",
    "kiosk_error": "a friendly error screen, no data",
    "join": "joining from the phone: the studio's services and prices, as the kiosk shows them",
    "join_poster": "the door's poster: the studio's name and the join page's address",
    "join_payment": "by the ticket's unguessable token, within its own tenant only",
    "feedback": "by the ticket's unguessable token: one score per ticket",
    "ticket_arriving": "by the ticket's unguessable token: 'estou chegando'",
    "ticket_give_up": "by the ticket's unguessable token: 'desisti', confirmed on the page",
    "whatsapp_stop": "by the ticket's unguessable token: stops its own WhatsApp notices",
    "openapi-json": "the API's description (routes and schemas): no studio's data",
    "openapi-view": "Swagger UI over that description",
}
# Routes that need more than the operator role.
MANAGER_ONLY_PREFIXES = ("ops_",)
REFUSED = {302, 401, 403, 404, 405}


def http_routes():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern).startswith("admin/"):
                    continue  # the admin has its own scoping tests (tests/test_admin.py)
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                yield prefix + str(p.pattern), p.name

    seen = set()
    for route, name in walk(get_resolver().url_patterns):
        if (route, name) not in seen:
            seen.add((route, name))
            yield route, name


@pytest.fixture
def world(tenant, other_tenant, alice, charlie, django_user_model):
    cryo = make_service(tenant, "Crioterapia", "C")
    device = make_device(tenant, "Crio 1", [cryo])
    ticket = queued_ticket(tenant, [cryo], customer_name="Fulana Secreta", cpf="52998224725")
    theirs = make_service(other_tenant, "Sauna", "S")
    their_ticket = queued_ticket(other_tenant, [theirs], customer_name="Beltrana Alheia")
    # An operator of the other tenant, and a member of ours without the manager role.
    dora = django_user_model.objects.create_user("dora", password="pw-dora")
    Membership.objects.create(user=dora, tenant=other_tenant, role=Role.OPERATOR)
    return {
        "tenant": tenant,
        "ticket": ticket,
        "line": ticket.lines.get(),
        "service": cryo,
        "device": device,
        "their_ticket": their_ticket,
        "dora": dora,
    }


def fill(route: str, world) -> str:
    """A concrete URL of `route` aimed at alice's tenant and its objects."""
    values = {
        "slug": world["tenant"].slug,
        "service_id": world["service"].id,
        "line_id": world["line"].id,
        "ticket_id": world["ticket"].id,
        "session_id": world["ticket"].id,  # any id of the tenant; refusals come before lookups
        "equipment_id": world["device"].id,
        "token": world["ticket"].token,
        "action": "start",
        "uidb64": "MQ",
        "path": "x",
    }

    def sub(match: re.Match) -> str:
        name = match.group(2)
        return str(values.get(name, "1"))

    url = re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)
    return "/" + url.lstrip("^").rstrip("$")


def leaks(content: bytes, world) -> list[str]:
    text = content.decode(errors="replace")
    found = []
    for secret in ("Fulana Secreta", "52998224725", "529.982.247-25", "Beltrana Alheia"):
        if secret in text:
            found.append(secret)
    return found


def requests_for(client: Client, url: str):
    yield "GET", client.get(url)
    yield "POST", client.post(url, {"reason": "x", "amount_received": "999"})


def test_every_member_route_refuses_strangers_and_every_public_route_leaks_nothing(
    world, charlie, alice
):
    stranger_clients = {"anonymous": Client()}
    stranger_clients["charlie (manager of another tenant)"] = Client()
    stranger_clients["charlie (manager of another tenant)"].force_login(charlie)
    stranger_clients["dora (operator of another tenant)"] = Client()
    stranger_clients["dora (operator of another tenant)"].force_login(world["dora"])
    problems = []
    routes = list(http_routes())
    assert len(routes) > 20, "the URL conf walk found too little"
    for route, name in routes:
        url = fill(route, world)
        for who, client in stranger_clients.items():
            for method, response in requests_for(client, url):
                leaked = leaks(response.content, world)
                if leaked:
                    problems.append(f"{method} {url} ({name}) as {who}: shows {leaked}")
                if name not in PUBLIC and response.status_code not in REFUSED:
                    problems.append(f"{method} {url} ({name}) as {who}: {response.status_code}")
                if response.status_code == 302 and name not in PUBLIC:
                    target = response["Location"]
                    if not any(part in target for part in ("/accounts/login/", "/parear/")):
                        problems.append(f"{method} {url} ({name}) as {who}: redirect to {target}")
    assert problems == []


def test_manager_screens_refuse_an_operator(world, alice):
    client = Client()
    client.force_login(alice)
    manager_routes = [(r, n) for r, n in http_routes() if n.startswith(MANAGER_ONLY_PREFIXES)]
    assert manager_routes, "no manager screens found: is the dashboard gone?"
    for route, name in manager_routes:
        response = client.get(fill(route, world))
        assert response.status_code == 403, (name, response.status_code)


def test_a_token_only_opens_its_own_tenants_pages(world, other_tenant):
    client = Client()
    for name in ("ticket_status", "payments_receipt", "payments_receipt_pdf"):
        route = next(r for r, n in http_routes() if n == name)
        url = fill(route, world).replace(f"/t/{world['tenant'].slug}/", f"/t/{other_tenant.slug}/")
        assert client.get(url).status_code == 404, name


# --- WebSocket routes ---------------------------------------------------------------------


def ws_routes() -> list[str]:
    return [str(p.pattern) for p in websocket_urlpatterns]


async def _connect(path: str, user=None) -> tuple[bool, list]:
    from config.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    )
    if user is not None:
        communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    messages = []
    if connected:
        while not await communicator.receive_nothing(timeout=0.2):
            messages.append(await communicator.receive_from())
        await communicator.disconnect()
    return connected, messages


PUBLIC_WS = {
    "display": "the public TV: numbers, services and rooms only",
    "senha": "a ticket's own page, by its unguessable token",
}


@pytest.mark.django_db(transaction=True)
def test_every_websocket_route_refuses_strangers(tenant, other_tenant, alice, charlie):
    cryo = make_service(tenant, "Crioterapia", "C")
    ticket = queued_ticket(tenant, [cryo], customer_name="Fulana Secreta")
    world = {"tenant": tenant, "ticket": ticket, "service": cryo, "line": ticket.lines.get()}
    world.update(device=make_device(tenant, "Crio 1", [cryo]))
    routes = ws_routes()
    assert routes, "no WebSocket routes found"
    for route in routes:
        path = fill(route, world)
        public = next((k for k in PUBLIC_WS if f"/{k}/" in route), None)
        for who in (None, charlie):
            connected, messages = async_to_sync(_connect)(path, who)
            for message in messages:
                assert "Fulana" not in message, (route, message)
            if public is None:
                assert not connected, f"{route} accepted {who or 'an anonymous visitor'}"
        # A token of this tenant under another tenant's address is refused.
        if public == "senha":
            elsewhere = path.replace(f"/t/{tenant.slug}/", f"/t/{other_tenant.slug}/")
            assert not async_to_sync(_connect)(elsewhere)[0]
