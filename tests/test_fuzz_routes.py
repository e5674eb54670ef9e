"""Malformed input on every route: NUL bytes, 10 kB strings, non-ASCII, `../`, huge and
negative numbers, SQL-ish quotes, in each path parameter, the query string, the form and a
socket's address. The answer is a refusal (404, 400, 403, 302, 405), never a 500, and an
anonymous visitor sees nothing of the studio's customers.

The routes come from the URL conf and the ASGI router, so a new page or socket is fuzzed by
default; one with a path parameter this file cannot fill fails. The query and form names are
every form's fields plus the names views and sockets read raw (`request.GET.get("services")`,
`self.query("equipment")`), found in the source. Deterministic lists rather than random
draws keep it short and reproducible. NUL only fails on PostgreSQL ("PostgreSQL text fields
cannot contain NUL (0x00) bytes"), where CI runs this.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django import forms
from django.test import Client
from django.urls import URLPattern

from config.asgi import application
from config.routing import websocket_urlpatterns
from equipment.models import Kind
from payments.fake_mercadopago import sign
from payments.models import Notification, PaymentSettings
from payments.sessions import confirm_cash, start_payment
from tenants.models import Membership
from tests import daphne_server
from tests.conftest import MP_SECRET, make_device, make_ticket, queued_ticket
from tests.test_isolation import PUBLIC, http_routes
from tests.test_realtime import cookie_header, pair_display, session_of
from tickets.converters import TicketTokenConverter
from tickets.live import NotFoundConsumer
from tickets.models import new_token
from totem.models import PairingCode

BASE_DIR = Path(__file__).resolve().parent.parent

MALFORMED = [
    "\x00",
    "%00",  # the three characters, once the path or query is decoded
    "x" * 10_000,
    "ção",
    "😀",
    "\u202egpj.exe",  # a right-to-left override
    "١٢",  # Arabic-Indic digits: int() takes them, [0-9] does not
    "²",  # a digit to str.isdigit(), not to int()
    "../../etc/passwd",
    "-1",
    "0",
    "99999999999999999999",  # past a bigint
    "9" * 5000,  # past Python's limit for int() from a string
    "' OR '1'='1' --",
    '"; DROP TABLE tickets_ticket; --',
]
CUSTOMER = {"name": "Fulana Secreta", "cpf": "52998224725", "phone": "11987654321"}

# How to fill each path parameter with something that exists, so that another parameter's
# malformed value, or the query's, reaches the view. A route with a parameter missing here
# fails test_the_fuzz_can_fill_every_parameter_of_every_route.
ACTIONS = {"panel_line": "chamar", "panel_ticket": "reimprimir", "panel_payment": "dinheiro"}
VALID = {
    "slug": lambda world, name: world["tenant"].slug,
    "token": lambda world, name: world["ticket"].token,
    "service_id": lambda world, name: world["service"].pk,
    "line_id": lambda world, name: world["line"].pk,
    "ticket_id": lambda world, name: world["ticket"].pk,
    "session_id": lambda world, name: world["session"].pk,
    "action": lambda world, name: ACTIONS[name],
    "uidb64": lambda world, name: "MQ",  # Django's password reset, user 1
    "member_id": lambda world, name: Membership.objects.filter(tenant=world["tenant"]).first().pk,
    "equipment_id": lambda world, name: world["station"].pk,
    "customer_id": lambda world, name: world["line"].ticket.customer_id,
}
# The admin is Django's, tested there; fuzzed here: the way in, and changelists with their
# search, page, ordering and filters (a filter on a text column with a NUL was a 500). The
# admin refuses a whole query for one bad filter, so a member's are sent one at a time.
ADMIN_PAGES = {
    "/admin/login/": [],
    "/admin/tickets/ticket/": ["q", "p", "o", "status__exact", "priority__exact"],
    "/admin/payments/paymentsession/": ["q", "status__exact", "method__exact"],
    "/admin/payments/notification/": ["q", "kind"],
}
# The token in the path is the key to these: whoever holds it may see the ticket.
KEYED_BY_TOKEN = {"ticket_status", "payments_receipt", "payments_receipt_pdf", "ws_senha"}
PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


def input_names() -> list[str]:
    """Every name a view may read from a query string or a form, or a socket from its query:
    the fields of every form, and the names read raw in the project's source."""
    names: set[str] = set()
    pending = [forms.BaseForm]
    while pending:
        form = pending.pop()
        pending.extend(form.__subclasses__())
        names.update(getattr(form, "base_fields", {}))
    raw = [
        r"request\.(?:GET|POST)(?:\.get\(|\.getlist\(|\[)\s*[\"']([^\"']+)[\"']",
        r"[\"']([^\"']+)[\"']\s+in\s+request\.(?:GET|POST)",
        r"self\.query(?:_ids)?\(\s*[\"']([^\"']+)[\"']",
    ]
    apps = ["config", "tenants", "equipment", "tickets", "payments", "totem", "panel", "ops"]
    for app in apps:
        for source in (BASE_DIR / app).rglob("*.py"):
            if "migrations" not in source.parts:
                text = source.read_text()
                names.update(name for pattern in raw for name in re.findall(pattern, text))
    return sorted(names)


def page_routes() -> list[tuple[str, str]]:
    """(route, name) of every page but the admin's, then the admin pages above."""
    found = list(http_routes())
    assert len(found) > 20, "the URL conf walk found too little"
    return found + [(page, "admin") for page in ADMIN_PAGES]


def socket_routes() -> list[tuple[str, str]]:
    """(route, name) of every socket, named by its screen (`display`, `panel`, `senha`)."""
    found = []
    for pattern in websocket_urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.callback.consumer_class is not NotFoundConsumer:
            route = str(pattern.pattern)
            found.append((route, "ws_" + route.split("/")[3]))  # ws/t/<slug:slug>/<screen>/
    assert len(found) >= 3, "the ASGI router walk found too little"
    return found


def fill(route: str, name: str, world: dict, malformed: tuple[str, str] | None = None) -> str:
    """A URL of `route` aimed at the studio's objects, `malformed` = (parameter, value)
    put in place of that one parameter."""

    def value(match: re.Match) -> str:
        parameter = match.group(2)
        if malformed and malformed[0] == parameter:
            return quote(malformed[1], safe="")
        return quote(str(VALID[parameter](world, name)), safe="")

    return "/" + PARAMETER.sub(value, route).lstrip("/")


def label(value: str) -> str:
    """The value as a report shows it: "'99999999'… (5000 characters)" for a long one."""
    return repr(value) if len(value) <= 20 else f"{value[:8]!r}… ({len(value)} characters)"


def parameters(route: str) -> list[str]:
    return [parameter for _, parameter in PARAMETER.findall(route)]


def leaks(text: str, world: dict) -> list[str]:
    secrets = [
        *CUSTOMER.values(),
        "529.982.247-25",
        world["ticket"].token,
        world["line"].ticket.token,
    ]
    return [secret for secret in secrets if secret in text]


def test_the_fuzz_can_fill_every_parameter_of_every_route():
    unknown = [
        f"<{parameter}> of {route} ({name})"
        for route, name in page_routes() + socket_routes()
        for parameter in parameters(route)
        if parameter not in VALID
    ]
    assert unknown == [], "add to VALID how to fill them"


def test_the_fuzz_knows_the_names_views_read():
    names = input_names()
    # One of each way a name is read: form fields, raw GET and POST, a socket's query.
    for name in ("customer_cpf", "username", "code", "services", "trocar", "toggle", "equipment"):
        assert name in names, name


def test_the_token_converter_accepts_every_token_a_ticket_is_given():
    for _ in range(200):
        assert re.fullmatch(TicketTokenConverter.regex, new_token())


@pytest.fixture
def world(tenant, cryo, boots, alice, bob, dave, settings) -> dict:
    # The kiosk persona makes hundreds of requests a minute; its limit is tested elsewhere.
    settings.KIOSK_REQUESTS_PER_MINUTE = 100_000
    PaymentSettings.objects.create(tenant=tenant, cash_enabled=True)
    station = make_device(tenant, "Crio 1", [cryo, boots])
    queued = queued_ticket(
        tenant,
        [cryo, boots],
        customer_name=CUSTOMER["name"],
        cpf=CUSTOMER["cpf"],
        phone=CUSTOMER["phone"],
    )
    paid = make_ticket(tenant, [cryo], customer_name=CUSTOMER["name"])
    confirm_cash(tenant, start_payment(paid, "cash").pk, alice, "200")  # a receipt
    pairing = Client()
    kiosk = make_device(tenant, "Totem 1", kind=Kind.KIOSK)
    code = PairingCode.objects.create(tenant=tenant, equipment=kiosk).code
    assert pairing.post(f"/t/{tenant.slug}/totem/parear/", {"code": code}).status_code == 302
    cookies = {"kiosk": pairing.cookies, "display": pair_display(tenant)}

    def client(who: str) -> Client:
        """A new client of `who`, ready: a route may have logged it out (`logout`) or left
        the purchase (`sair`). It keeps a 500 as a response, so every route is reported."""
        fresh = Client(raise_request_exception=False)
        if who in cookies:
            fresh.cookies.load(cookies[who])
        if who in ("alice", "bob", "dave"):
            fresh.force_login({"alice": alice, "bob": bob, "dave": dave}[who])
            chosen = fresh.post(f"/t/{tenant.slug}/painel/estacao/", {"station": station.pk})
            assert chosen.status_code == 302  # at a station, or the panel only asks for one
        if who == "kiosk":  # mid-purchase, so that the later steps read their forms
            fresh.post(f"/t/{tenant.slug}/totem/comecar/")
            fresh.post(f"/t/{tenant.slug}/totem/servicos/", {"toggle": cryo.pk})
        return fresh

    return {
        "tenant": tenant,
        "service": cryo,
        "ticket": paid,
        "line": queued.lines.first(),
        "session": start_payment(make_ticket(tenant, [cryo]), "cash"),
        "station": station,
        "client": client,
        "socket_cookies": {
            "display": cookies["display"],
            "alice": {"sessionid": session_of(alice)},
        },
    }


def personas(name: str) -> list[str]:
    """Anonymous everywhere; an operator on the screens of a member (a manager on the
    manager's, the administrator on the team's), the kiosk and the TV on theirs."""
    if name.startswith("ops_team"):
        return ["anonymous", "dave"]
    if name.startswith("kiosk"):
        return ["anonymous", "kiosk"]
    if name.startswith(("display", "ws_display")):
        return ["anonymous", "display"]
    if name.startswith(("ops_", "admin")):
        return ["anonymous", "bob"]
    return ["anonymous", "alice"]


class Problems(list):
    def check(self, world: dict, who: str, what: str, response, *, public: bool) -> None:
        if response.status_code >= 500:
            error = response.exc_info[1] if response.exc_info else None
            self.append(f"{what} as {who}: {response.status_code} {error!r:.200}")
        if who == "anonymous" and not public:
            leaked = leaks(response.content.decode(errors="replace"), world)
            if leaked:
                self.append(f"{what} as {who}: shows {leaked}")


def test_no_page_answers_malformed_input_with_a_server_error(world):
    names = input_names()
    problems = Problems()
    for route, name in page_routes():
        for who in personas(name):
            client = world["client"](who)
            # Each path parameter malformed in turn, the others naming real objects.
            for parameter in parameters(route):
                for value in MALFORMED:
                    url = fill(route, name, world, (parameter, value))
                    response = client.get(url)
                    if response.status_code == 405:  # a POST-only view
                        response = client.post(url)
                    method = response.request["REQUEST_METHOD"]
                    what = f"{method} {route} with <{parameter}>={label(value)}"
                    problems.check(world, who, what, response, public=False)
            if who == "anonymous" and name not in PUBLIC and route != "/admin/login/":
                continue  # turned away before any input is read (tests/test_isolation.py)
            # A real object's page with every query and form name set to the malformed value.
            url = fill(route, name, world)
            public = name in KEYED_BY_TOKEN
            for value in MALFORMED:
                data = dict.fromkeys(names, value)
                query = f"{url}?{urlencode(data)}"
                what = f"{route} with every input = {label(value)}"
                problems.check(world, who, f"GET {what}", client.get(query), public=public)
                problems.check(world, who, f"POST {what}", client.post(query, data), public=public)
                for field in ADMIN_PAGES.get(route, []) if who != "anonymous" else []:
                    response = client.get(f"{url}?{urlencode({field: value})}")
                    what = f"GET {route} with ?{field}={label(value)}"
                    problems.check(world, who, what, response, public=public)
    assert not problems, "\n".join(problems)


def test_a_nul_in_a_cookie_or_a_header_is_refused_before_it_reaches_a_query(world, tenant):
    # The cookie parser unquotes "\000" to a NUL: the session is read by a query on every page.
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "\x00abcdefghijkl"
    assert client.get(f"/t/{tenant.slug}/painel/").status_code == 400
    # The pairing keeps the browser's User-Agent beside the spent code.
    kiosk = make_device(tenant, "Totem 2", kind=Kind.KIOSK)
    code = PairingCode.objects.create(tenant=tenant, equipment=kiosk)
    response = Client(raise_request_exception=False).post(
        f"/t/{tenant.slug}/totem/parear/", {"code": code.code}, headers={"User-Agent": "a\x00b"}
    )
    assert response.status_code == 400
    code.refresh_from_db()
    assert code.used_at is None  # refused before anything was written: the code still works


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"type": "payment\x00", "action": "x", "data": {"id": ["\x00"]}}),
        "[" * 100_000,  # deeper than Python's JSON parser goes
    ],
    ids=["a NUL escaped in JSON", "nested past the parser's depth"],
)
def test_a_signed_webhook_with_a_malformed_body_is_recorded_without_it(tenant, mp, body):
    ts = int(time.time())
    response = Client(raise_request_exception=False).post(
        f"/t/{tenant.slug}/pagamentos/webhook/mercadopago/?data.id=123",
        data=body,
        content_type="application/json",
        headers={"x-request-id": "req-1", "x-signature": sign(MP_SECRET, "123", "req-1", ts)},
    )
    assert response.status_code == 200
    notification = Notification.objects.get(tenant=tenant)
    assert (notification.body, notification.kind, notification.data_id) == ({}, "", "123")


# --- sockets -------------------------------------------------------------------------------


async def _open(path: str, cookies: dict, query: bytes | None = None) -> tuple[bool, list[str]]:
    headers = [(b"origin", b"http://testserver")]
    if cookies:
        headers.append((b"cookie", cookie_header(cookies).encode("latin-1")))
    socket = WebsocketCommunicator(application, path, headers=headers)
    if query is not None:
        socket.scope["query_string"] = query
    connected, _ = await socket.connect()  # raises what the application raised
    messages = []
    if connected:
        messages.append(await socket.receive_from())
        await socket.disconnect()
    return connected, messages


@pytest.mark.django_db(transaction=True)
def test_no_socket_crashes_on_malformed_input_and_a_nul_is_refused(world):
    names = input_names()
    problems = []
    # A session cookie that the cookie parser unquotes to a NUL, read by a query on the way in.
    cookies = {"anonymous": {}, "nul": {"sessionid": '"\\000abcdefghijkl"'}}
    cookies.update(world["socket_cookies"])

    def attempt(
        who: str, what: str, path: str, query: bytes | None = None, public: bool = False
    ) -> bool:
        try:
            connected, messages = async_to_sync(_open)(path, cookies[who], query)
        except Exception as error:  # noqa: BLE001 - the crash is what is looked for
            problems.append(f"{what} as {who}: {error!r:.200}")
            return False
        if who == "anonymous" and not public and leaks(" ".join(messages), world):
            problems.append(f"{what} as {who}: shows {leaks(' '.join(messages), world)}")
        return connected

    for route, name in socket_routes():
        member = {"ws_panel": "alice", "ws_display": "display"}.get(name, "anonymous")
        for parameter in parameters(route):
            for value in MALFORMED:
                what = f"{route} with <{parameter}>={label(value)}"
                for who in dict.fromkeys(["anonymous", member]):
                    if attempt(who, what, fill(route, name, world, (parameter, value))):
                        problems.append(f"{what} as {who}: accepted")
        path = fill(route, name, world)
        for value in MALFORMED:
            what = f"{route} with every query name = {label(value)}"
            query = urlencode(dict.fromkeys(names, value)).encode()
            accepted = attempt(member, what, path, query, public=name in KEYED_BY_TOKEN)
            if accepted and "\x00" in value:
                problems.append(f"{what} as {member}: accepted")
        what = f"{route} with a query not in UTF-8"
        attempt(member, what, path, b"services=\xff&equipment=\xfe", public=name in KEYED_BY_TOKEN)
        if attempt("nul", f"{route} with a NUL in the session cookie", path):
            problems.append(f"{route} with a NUL in the session cookie: accepted")
    assert not problems, "\n".join(problems)


# --- on Daphne -----------------------------------------------------------------------------

daphne = daphne_server.daphne


def http_status(address: str, path: str, headers: dict | None = None) -> int:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def socket_status(address: str, path: str, cookie: str = "") -> int:
    """101 when the handshake is accepted, else the status it was refused with."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    headers = {"Cookie": cookie} if cookie else {}
    try:
        with connect(
            f"ws://{address}{path}", origin=f"http://{address}", additional_headers=headers
        ):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_on_daphne_a_nul_is_a_refusal_and_never_a_server_error(daphne, tenant, cryo):
    token = make_ticket(tenant, [cryo]).token
    page, socket = f"/t/{tenant.slug}/senha/", f"/ws/t/{tenant.slug}/senha/"
    nul_session = 'sessionid="\\000abcdefghijkl"'
    assert http_status(daphne, f"{page}{token}/") == 200
    assert http_status(daphne, f"{page}%00/") == 404
    assert http_status(daphne, f"{page}{token}/?x=%00") == 400
    assert http_status(daphne, f"{page}{token}/", {"Cookie": nul_session}) == 400
    assert socket_status(daphne, f"{socket}{token}/") == 101
    assert socket_status(daphne, f"{socket}%00/") == 403
    assert socket_status(daphne, f"{socket}{token}/?x=%00") == 403
    assert socket_status(daphne, f"{socket}{token}/", cookie=nul_session) == 403
