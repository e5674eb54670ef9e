"""The REST API for integrators (api/): keys, scopes, tenant isolation on every route,
idempotency, rate limits, problem details, pagination, and the flow sell → call → complete
through the same domain operations the screens use."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiKey, ApiRequest, IdempotentReply, hash_secret
from api.views import api
from payments.models import PaymentSettings
from payments.sessions import start_payment
from tenants.models import AuditAction, AuditLog
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tests.test_customers import customer_of, with_sessions
from tickets.models import CreditEntry, Extra, LineStatus, Ticket, TicketStatus


def make_key(tenant, creator=None, *, read=True, sell=False, operate=False) -> str:
    key = ApiKey(
        tenant=tenant,
        name="booking site",
        can_read=read,
        can_sell=sell,
        can_operate=operate,
        created_by=creator,
    )
    secret = key.new_secret()
    key.save()
    return secret


class Integrator:
    """A client of the API with one key, as an integrator's code would be."""

    def __init__(self, key: str, language: str = "en") -> None:
        self.client = Client(raise_request_exception=False)
        self.headers = {"Authorization": f"Bearer {key}", "Accept-Language": language}

    def get(self, path: str, **query):
        return self.client.get(f"/api/v1{path}", query, headers=self.headers)

    def post(self, path: str, body: dict | None = None, *, idempotency_key: str | None = None):
        headers = {**self.headers, "Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self.client.post(
            f"/api/v1{path}", body or {}, content_type="application/json", headers=headers
        )


@pytest.fixture
def studio(tenant, dave, cryo, boots):
    PaymentSettings.objects.create(tenant=tenant, cash_enabled=True)
    device = make_device(tenant, "Crio 1", [cryo])
    make_device(tenant, "Bota 1", [boots])
    return {"tenant": tenant, "cryo": cryo, "boots": boots, "device": device, "admin": dave}


@pytest.fixture
def everything(studio, dave) -> Integrator:
    return Integrator(make_key(studio["tenant"], dave, read=True, sell=True, operate=True))


def sell(integrator: Integrator, studio, **changes):
    body = {
        "services": [studio["cryo"].pk, studio["boots"].pk],
        "customer": {"name": "Maria Souza", "cpf": "529.982.247-25"},
        "consent_version": "2026-01",
        **changes,
    }
    return integrator.post("/tickets", body)


def test_a_sold_ticket_is_paid_at_the_counter_called_started_and_completed(everything, studio):
    sold = sell(everything, studio)
    assert sold.status_code == 201, sold.content
    ticket = sold.json()
    assert ticket["object"] == "ticket"
    assert ticket["status"] == TicketStatus.PENDING_PAYMENT
    assert ticket["total"] == "200.00" and ticket["currency"] == "BRL"
    assert ticket["customer_cpf"] != "52998224725"
    assert re.search(r"[+-]\d\d:\d\d$", ticket["created_at"]), ticket["created_at"]
    [payment] = ticket["payments"]
    assert payment["method"] == "cash" and payment["status"] == "pending"

    paid = everything.post(f"/payments/{payment['id']}/confirm_cash", {"amount_received": "200"})
    assert paid.status_code == 200, paid.content
    assert paid.json()["status"] == "paid" and paid.json()["amount_received"] == "200.00"

    ticket = everything.get(f"/tickets/{ticket['id']}").json()
    assert ticket["status"] == TicketStatus.IN_QUEUE
    cryo_line = next(x for x in ticket["lines"] if x["service_id"] == studio["cryo"].pk)
    assert cryo_line["place"] == {"position": 1, "estimated_wait_minutes": 0}

    waiting = everything.get("/lines", service_id=studio["cryo"].pk).json()
    assert [x["id"] for x in waiting["data"]] == [cryo_line["id"]]

    called = everything.post(
        f"/services/{studio['cryo'].pk}/call_next", {"device_id": studio["device"].pk}
    )
    assert called.status_code == 200, called.content
    assert called.json()["id"] == cryo_line["id"]
    assert called.json()["status"] == LineStatus.CALLED
    assert called.json()["device_id"] == studio["device"].pk
    # Only that line left its queue: the boots line of the same ticket still waits.
    boots = everything.get("/lines", service_id=studio["boots"].pk).json()["data"]
    assert [x["ticket_id"] for x in boots] == [ticket["id"]]

    assert everything.post(f"/lines/{cryo_line['id']}/start").json()["status"] == "in_progress"
    done = everything.post(f"/lines/{cryo_line['id']}/complete")
    assert done.json()["status"] == LineStatus.COMPLETED
    device = everything.get(f"/devices/{studio['device'].pk}").json()
    assert device["current_line_id"] is None


def test_the_openapi_document_lists_every_route_with_its_problems():
    schema = api.get_openapi_schema()
    assert schema["openapi"].startswith("3.")
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "application/problem+json" in operation["responses"][404]["content"], path
            if method == "post":
                names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
                assert "Idempotency-Key" in names, path


# --- tenant isolation: a key of one studio on every route, aimed at another's objects --------

OPERATIONS = [
    (method, path)
    for path, operations in api.get_openapi_schema()["paths"].items()
    for method in operations
]
PATH_PARAMETER = re.compile(r"{(\w+)}")


def test_the_openapi_document_has_every_route_of_the_api():
    """The isolation test below walks the document: a route missing from it would be missed."""
    from tests.test_isolation import http_routes

    resolved = {
        re.sub(r"<(\w+)>", r"{\1}", "/" + route)
        for route, name in http_routes()
        if route.startswith("api/v1/") and name not in ("openapi-json", "openapi-view", "api-root")
    }
    assert resolved == {path for _, path in OPERATIONS}
    assert len(OPERATIONS) >= 20


@pytest.fixture
def theirs(other_tenant):
    """Another studio's objects: a sold and queued ticket, its line, payment, device."""
    PaymentSettings.objects.create(tenant=other_tenant, cash_enabled=True)
    sauna = make_service(other_tenant, "Sauna", "S")
    device = make_device(other_tenant, "Sauna 1", [sauna])
    ticket = queued_ticket(other_tenant, [sauna], customer_name="Beltrana Alheia")
    pending = make_ticket(other_tenant, [sauna], customer_name="Beltrana Alheia")
    session = start_payment(pending, "cash")
    customer, _sold = with_sessions(other_tenant, [sauna], customer_of(other_tenant, "Beltrana"))
    return {
        "customer_id": customer.pk,
        "cpf": customer.cpf,
        "service_id": sauna.pk,
        "ticket_id": ticket.pk,
        "line_id": ticket.lines.get().pk,
        "session_id": session.pk,
        "equipment_id": device.pk,
    }


def body_for(method: str, path: str, studio) -> dict:
    """A body that would be valid in the key's own studio: only the path's object is theirs."""
    if path.endswith(("/call_next", "/call")):
        return {"device_id": studio["device"].pk}
    if path.endswith("/cancel"):
        return {"reason": "test"}
    if path.endswith("/confirm_cash"):
        return {"amount_received": "500.00"}
    return {}


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_a_key_of_one_studio_finds_nothing_of_another_on_any_route(
    method, path, studio, everything, theirs
):
    url = PATH_PARAMETER.sub(lambda m: str(theirs[m.group(1)]), path.removeprefix("/api/v1"))
    if method == "get":
        # The lookup by CPF, with their customer's CPF: a customer of ours has none such.
        response = everything.get(url, **({"cpf": theirs["cpf"]} if "customers" in url else {}))
    else:
        response = everything.post(url, body_for(method, path, studio))
    if PATH_PARAMETER.search(path):
        assert response.status_code == 404, response.content
        assert response["Content-Type"].startswith("application/problem+json")
    elif path == "/api/v1/tickets" and method == "post":
        # Their service is not on sale in our studio.
        response = everything.post(
            "/tickets", {**_sale(studio), "services": [theirs["service_id"]]}
        )
        assert response.status_code == 422
    else:
        assert response.status_code == 200, response.content
        if url == "/customers":
            assert response.json()["data"] == []
    text = response.content.decode()
    assert "Beltrana" not in text and "Sauna" not in text


def _sale(studio) -> dict:
    return {
        "services": [studio["cryo"].pk],
        "customer": {"name": "Maria Souza"},
        "consent_version": "2026-01",
    }


def test_another_studios_device_cannot_be_named_in_a_body(studio, everything, theirs):
    ticket = queued_ticket(studio["tenant"], [studio["cryo"]])
    device = {"device_id": theirs["equipment_id"]}
    assert everything.post(f"/services/{studio['cryo'].pk}/call_next", device).status_code == 404
    line = ticket.lines.get()
    assert everything.post(f"/lines/{line.pk}/call", device).status_code == 404
    line.refresh_from_db()
    assert line.status == LineStatus.WAITING


# --- keys and scopes ----------------------------------------------------------------------


def scope_of(method: str, path: str) -> str:
    if method == "get":
        return "read"
    if path == "/api/v1/tickets" or path.endswith(("/cancel", "/confirm_cash")):
        return "sell"
    return "operate"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_route_needs_its_scope(method, path, studio, dave):
    scope = scope_of(method, path)
    others = {"read": False, "sell": False, "operate": False}
    lacking = Integrator(
        make_key(studio["tenant"], dave, **{**dict.fromkeys(others, True), scope: False})
    )
    url = PATH_PARAMETER.sub("1", path.removeprefix("/api/v1"))
    response = lacking.get(url) if method == "get" else lacking.post(url, {})
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "insufficient_scope"


def test_no_key_a_wrong_key_and_a_revoked_key_are_refused(studio, dave):
    secret = make_key(studio["tenant"], dave)
    assert Integrator(secret).get("/services").status_code == 200
    anonymous = Client().get("/api/v1/services")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert (
        Integrator(secret[:-1] + ("0" if secret[-1] != "0" else "1")).get("/services").status_code
        == 401
    )
    ApiKey.objects.update(revoked_at=timezone.now())
    assert Integrator(secret).get("/services").status_code == 401


def test_a_key_is_stored_hashed_and_its_use_is_recorded(studio, dave):
    secret = make_key(studio["tenant"], dave)
    key = ApiKey.objects.get()
    assert secret not in (key.prefix, key.secret_hash) and key.secret_hash == hash_secret(secret)
    assert secret.startswith(key.prefix + "_") and key.last_used_at is None
    Integrator(secret).get("/services")
    Integrator(secret).get("/tickets/999999")
    key.refresh_from_db()
    assert key.last_used_at is not None
    log = list(ApiRequest.objects.order_by("id").values_list("method", "path", "status", "api_key"))
    assert log == [
        ("GET", "/api/v1/services", 200, key.pk),
        ("GET", "/api/v1/tickets/999999", 404, key.pk),
    ]


def test_an_administrator_makes_a_key_in_admin_sees_it_once_and_revokes_it(studio, dave, bob):
    admin = Client()
    admin.force_login(dave)
    made = admin.post(
        "/admin/api/apikey/add/",
        {
            "tenant": studio["tenant"].pk,
            "name": "Agenda online",
            "can_read": "on",
            "can_sell": "on",
        },
    )
    assert made.status_code == 200, made.content
    secret = re.search(r'value="(tk_[0-9a-f]+_[0-9a-f]+)"', made.content.decode()).group(1)
    key = ApiKey.objects.get()
    assert key.created_by == dave and key.scopes == ["read", "sell"]
    assert secret not in admin.get(f"/admin/api/apikey/{key.pk}/change/").content.decode()
    assert Integrator(secret).get("/services").status_code == 200
    assert AuditLog.objects.filter(action=AuditAction.API_KEY_CREATED, entity_id=key.pk).exists()
    log = admin.get("/admin/api/apirequest/")
    assert log.status_code == 200 and "/api/v1/services" in log.content.decode()
    entry = ApiRequest.objects.get()
    assert admin.get(f"/admin/api/apirequest/{entry.pk}/change/").status_code == 200

    admin.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert Integrator(secret).get("/services").status_code == 401
    # A manager of the studio is not its administrator: keys are not his to see.
    manager = Client()
    manager.force_login(bob)
    assert manager.get("/admin/api/apikey/").status_code == 403


# --- idempotency --------------------------------------------------------------------------


def test_a_retried_post_gets_the_first_reply_and_makes_one_ticket(studio, everything):
    body = _sale(studio)
    first = everything.post("/tickets", body, idempotency_key="order-42")
    again = everything.post("/tickets", body, idempotency_key="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Ticket.objects.count() == 1


def test_a_retry_serialised_differently_is_the_same_request(studio, everything):
    body = _sale(studio)
    first = everything.post("/tickets", body, idempotency_key="order-44")
    headers = {**everything.headers, "Idempotency-Key": "order-44"}
    pretty = json.dumps(dict(reversed(body.items())), indent=4, ensure_ascii=True)
    again = everything.client.post(
        "/api/v1/tickets", pretty, content_type="application/json", headers=headers
    )
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and Ticket.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_refused(studio, everything):
    everything.post("/tickets", _sale(studio), idempotency_key="order-43")
    other = everything.post(
        "/tickets", {**_sale(studio), "services": [studio["boots"].pk]}, idempotency_key="order-43"
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert Ticket.objects.count() == 1


def test_a_refusal_is_replayed_too_and_leaves_nothing_half_done(studio, everything):
    ticket = queued_ticket(studio["tenant"], [studio["cryo"]])
    line = ticket.lines.get()
    refused = everything.post(f"/lines/{line.pk}/start", idempotency_key="start-1")
    assert refused.status_code == 409 and refused.json()["code"] == "refused"
    everything.post(f"/lines/{line.pk}/call", {"device_id": studio["device"].pk})
    # Same key: the first reply (the refusal), not a start now that it would succeed.
    assert everything.post(f"/lines/{line.pk}/start", idempotency_key="start-1").status_code == 409
    line.refresh_from_db()
    assert line.status == LineStatus.CALLED


def test_a_post_without_an_idempotency_key_is_refused(studio, everything):
    response = everything.client.post(
        "/api/v1/tickets",
        _sale(studio),
        content_type="application/json",
        headers=everything.headers,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    assert Ticket.objects.count() == 0


def test_keys_are_per_api_key(studio, dave):
    one = Integrator(make_key(studio["tenant"], dave, sell=True))
    two = Integrator(make_key(studio["tenant"], dave, sell=True))
    assert one.post("/tickets", _sale(studio), idempotency_key="k").status_code == 201
    assert two.post("/tickets", _sale(studio), idempotency_key="k").status_code == 201
    assert IdempotentReply.objects.count() == 2 and Ticket.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_retries_with_one_key_make_one_ticket(tenant, dave, cryo):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    PaymentSettings.objects.create(tenant=tenant, cash_enabled=True)
    make_device(tenant, "Crio 1", [cryo])
    integrator = Integrator(make_key(tenant, dave, sell=True))
    body = {"services": [cryo.pk], "customer": {"name": "Ana"}, "consent_version": "v1"}

    def post(_):
        try:
            return (
                Integrator(integrator.headers["Authorization"].split()[1])
                .post("/tickets", body, idempotency_key="same")
                .status_code
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(post, range(6)))
    assert statuses == [201] * 6
    assert Ticket.objects.count() == 1


# --- rate limit ---------------------------------------------------------------------------


def test_past_its_limit_a_key_gets_429_with_retry_after_and_another_key_does_not(
    studio, dave, settings
):
    settings.API_REQUESTS_PER_MINUTE = 3
    one = Integrator(make_key(studio["tenant"], dave))
    two = Integrator(make_key(studio["tenant"], dave))
    assert [one.get("/services").status_code for _ in range(3)] == [200] * 3
    limited = one.get("/services")
    assert limited.status_code == 429
    assert limited["Content-Type"].startswith("application/problem+json")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert two.get("/services").status_code == 200


@pytest.mark.redis
def test_the_limit_still_counts_when_redis_does_not_answer(studio, dave, settings):
    """tenants/redis_outage.py: while Redis is away the cache is this process's memory, so
    the API answers and its limit still counts (per process) instead of failing."""
    settings.API_REQUESTS_PER_MINUTE = 2
    settings.REDIS_RETRY_SECONDS = 60
    # Nothing listens on port 1: every connection is refused at once.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    one = Integrator(make_key(studio["tenant"], dave))
    assert [one.get("/services").status_code for _ in range(3)] == [200, 200, 429]


# --- problem details, language, pagination, money and time -----------------------------------


def test_problems_speak_the_clients_language(studio, dave):
    secret = make_key(studio["tenant"], dave)
    english = Integrator(secret, "en").get("/tickets/999999").json()
    portuguese = Integrator(secret, "pt-BR").get("/tickets/999999").json()
    assert english["status"] == portuguese["status"] == 404
    assert english["type"] == portuguese["type"] == "/api/v1/problems/not_found"
    assert english["title"] == "Not found"
    assert portuguese["title"] == "Não encontrado"
    assert english["instance"] == "/api/v1/tickets/999999"


def test_a_domain_refusal_is_a_problem_in_portuguese(studio, dave):
    integrator = Integrator(make_key(studio["tenant"], dave, operate=True), "pt-BR")
    device = {"device_id": studio["device"].pk}
    refused = integrator.post(f"/services/{studio['cryo'].pk}/call_next", device)
    assert refused.status_code == 409
    assert refused.json()["detail"] == "Ninguém disponível aguardando Crioterapia."


def test_invalid_fields_are_listed(studio, everything):
    response = everything.post("/tickets", {"services": [], "customer": {"name": "A"}})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"services", "consent_version"} <= fields
    cpf = everything.post("/tickets", {**_sale(studio), "customer": {"name": "A", "cpf": "111"}})
    assert cpf.status_code == 422 and cpf.json()["errors"][0]["field"] == "customer_cpf"


def test_lists_page_by_cursor_without_repeats_or_gaps(studio, everything):
    made = [queued_ticket(studio["tenant"], [studio["cryo"]]).pk for _ in range(5)]
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = everything.get("/tickets", **query).json()
        seen += [t["id"] for t in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == sorted(made, reverse=True)
    assert everything.get("/tickets", cursor="not-a-cursor").status_code == 400


def test_lines_follow_the_seeds_filters_and_sort_orders(studio, everything):
    normal = queued_ticket(studio["tenant"], [studio["cryo"]])
    elder = queued_ticket(studio["tenant"], [studio["cryo"]], priority="priority_80")
    ids = {normal.lines.get().pk: "normal", elder.lines.get().pk: "elder"}

    def order(**query):
        data = everything.get("/lines", service_id=studio["cryo"].pk, **query).json()["data"]
        return [ids[x["id"]] for x in data]

    assert order() == ["elder", "normal"]  # the call order: 80+ first
    assert order(sort_order="arrival") == ["normal", "elder"]
    assert order(sort_order="-arrival") == ["elder", "normal"]
    assert order(priority_filter="priority_80") == ["elder"]
    everything.post(f"/services/{studio['cryo'].pk}/call_next", {"device_id": studio["device"].pk})
    assert order() == ["normal"]
    assert order(include_called="true") == ["elder", "normal"]


def test_queues_give_waits_and_amounts_are_strings(studio, everything):
    for _ in range(3):
        queued_ticket(studio["tenant"], [studio["cryo"]])
    cryo = everything.get(f"/queues/{studio['cryo'].pk}").json()
    assert cryo["waiting"] == 3 and cryo["devices_online"] == 1
    assert cryo["estimated_wait_minutes"] == 30  # three 10-minute services ahead, one device
    service = everything.get(f"/services/{studio['cryo'].pk}").json()
    assert service["price"] == "120.00" and service["currency"] == "BRL"
    extra = Extra.objects.create(tenant=studio["tenant"], name="Toalha", price=Decimal("5.5"))
    assert everything.get("/extras").json()["data"] == [
        {
            "object": "extra",
            "id": extra.pk,
            "name": "Toalha",
            "price": "5.50",
            "currency": "BRL",
            "stock": None,
        }
    ]


def test_times_carry_the_offset_of_the_studios_zone(studio, everything):
    studio["tenant"].timezone = "America/Manaus"
    studio["tenant"].save()
    ticket = everything.post("/tickets", _sale(studio)).json()
    assert ticket["created_at"].endswith("-04:00")


def test_a_ticket_paid_elsewhere_joins_the_queues_at_once_and_its_payment_pays_once(
    studio, everything, dave
):
    paid = {"type": "paid", "method": "pix", "reference": "booking-981"}
    sold = everything.post("/tickets", {**_sale(studio), "payment": paid})
    assert sold.status_code == 201, sold.content
    ticket = sold.json()
    assert ticket["status"] == TicketStatus.IN_QUEUE
    payment = everything.get(f"/payments/{ticket['payments'][0]['id']}").json()
    assert (payment["status"], payment["method"], payment["provider"]) == (
        "paid",
        "pix",
        "external",
    )
    assert AuditLog.objects.filter(action=AuditAction.PAYMENT_CONFIRMED, user=dave).exists()
    again = everything.post("/tickets", {**_sale(studio), "payment": paid})
    assert again.status_code == 409 and "booking-981" in again.json()["detail"]
    assert Ticket.objects.count() == 1  # the refused sale left no ticket behind
    vague = everything.post("/tickets", {**_sale(studio), "payment": {"type": "paid"}})
    assert vague.status_code == 422


def test_replies_are_forgotten_after_a_day_and_the_log_after_the_audits_retention(
    studio, everything
):
    from datetime import timedelta

    from api.management.commands.purge_api_records import purge

    everything.post("/tickets", _sale(studio), idempotency_key="old")
    everything.post("/tickets", _sale(studio), idempotency_key="new")
    IdempotentReply.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    ApiRequest.objects.filter(idempotency_key="old").update(
        created_at=timezone.now() - timedelta(days=181)
    )
    assert purge() == (1, 1)
    assert list(IdempotentReply.objects.values_list("key", flat=True)) == ["new"]
    assert purge() == (0, 0)


def test_a_flood_of_wrong_keys_from_one_address_is_turned_away_before_any_lookup(
    studio, dave, django_assert_num_queries
):
    from api.auth import FAILURES_PER_MINUTE

    wrong = Integrator("tk_000000000000_" + "0" * 64)
    for _ in range(FAILURES_PER_MINUTE):
        assert wrong.get("/services").status_code == 401
    right = Integrator(make_key(studio["tenant"], dave))
    with django_assert_num_queries(0):
        assert right.get("/services").status_code == 401  # from the same address


def test_a_payment_made_elsewhere_is_refunded_by_hand_like_cash(studio, everything, bob):
    from payments.sessions import refund

    paid = {"type": "paid", "method": "card", "reference": "booking-77"}
    ticket = everything.post("/tickets", {**_sale(studio), "payment": paid}).json()
    session = refund(studio["tenant"], ticket["payments"][0]["id"], bob, "booking cancelled")
    assert session.status == "refunded" and session.refund_external_id == ""
    assert everything.get(f"/tickets/{ticket['id']}").json()["status"] == TicketStatus.CANCELLED


def test_a_database_outage_is_a_503_to_retry_not_a_500(studio, everything, monkeypatch):
    from django.db import OperationalError

    from api import views

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(views.issuing, "sellable_ids", down)
    response = everything.get("/services")
    assert response.status_code == 503 and response["Retry-After"]


# --- customers and their packages ---------------------------------------------------------


def test_a_customer_is_found_by_full_cpf_only_and_comes_back_masked(studio, everything):
    customer, sold = with_sessions(studio["tenant"], [studio["cryo"]], sessions=3)
    customer.phone = "11987654321"
    customer.save()
    found = everything.get("/customers", cpf="529.982.247-25").json()
    [item] = found["data"]
    assert item["object"] == "customer" and item["id"] == customer.pk
    assert item["cpf"] == "***.982.247-**" and item["phone"] == "(11) *****-4321"
    assert "52998224725" not in str(found) and "987654321" not in str(found)
    [balance] = item["balances"]
    assert balance["service_id"] == studio["cryo"].pk and balance["sessions_left"] == 3
    assert re.search(r"[+-]\d\d:\d\d$", balance["valid_until"])

    assert everything.get("/customers", cpf="111.444.777-35").json()["data"] == []
    partial = everything.get("/customers", cpf="529982")
    assert partial.status_code == 422 and partial.json()["errors"][0]["field"] == "cpf"
    assert everything.get("/customers").status_code == 422  # no listing of everyone
    assert everything.get(f"/customers/{customer.pk}").json()["balances"] == item["balances"]
    assert not ApiRequest.objects.filter(path__contains="529").exists()


def test_a_customers_packages_show_what_was_granted_and_is_left(studio, everything):
    customer, sold = with_sessions(studio["tenant"], [studio["cryo"], studio["boots"]], sessions=5)
    answer = everything.get(f"/customers/{customer.pk}/packages").json()
    [package] = answer["data"]
    assert package["object"] == "customer_package" and package["id"] == sold.pk
    assert package["live"] is True and package["price"] == "0.00"
    assert {(x["service_id"], x["granted"], x["left"]) for x in package["sessions"]} == {
        (studio["cryo"].pk, 5, 5),
        (studio["boots"].pk, 5, 5),
    }


def test_a_ticket_paid_with_package_sessions_joins_the_queue_and_takes_one_session(
    studio, everything
):
    customer, _sold = with_sessions(studio["tenant"], [studio["cryo"]], sessions=1)
    body = {
        "services": [studio["cryo"].pk],
        "customer_id": customer.pk,
        "use_sessions": [studio["cryo"].pk],
        "consent_version": "2026-01",
    }
    sold = everything.post("/tickets", body)
    assert sold.status_code == 201, sold.content
    ticket = sold.json()
    assert ticket["customer_id"] == customer.pk and ticket["total"] == "0.00"
    assert ticket["status"] == TicketStatus.IN_QUEUE and ticket["payments"] == []
    [line] = ticket["lines"]
    assert line["paid_with_package"] is True and line["price"] == "0.00"
    assert everything.get(f"/customers/{customer.pk}").json()["balances"] == []
    assert CreditEntry.objects.filter(kind="spent", line_id=line["id"]).count() == 1

    again = everything.post("/tickets", body)  # the last session is gone: the domain refuses
    assert again.status_code == 422, again.content
    assert again.json()["errors"][0]["field"] == "services"
    assert Ticket.objects.count() == 1

    everything.post(f"/tickets/{ticket['id']}/cancel", {"reason": "remarcou"})
    [back] = everything.get(f"/customers/{customer.pk}").json()["balances"]
    assert back["sessions_left"] == 1


def test_sessions_for_another_service_or_a_customer_twice_are_refused(studio, everything, theirs):
    customer, _sold = with_sessions(studio["tenant"], [studio["cryo"]])
    base = {"services": [studio["cryo"].pk], "consent_version": "2026-01"}
    wrong = everything.post(
        "/tickets", {**base, "customer_id": customer.pk, "use_sessions": [studio["boots"].pk]}
    )
    assert wrong.status_code == 422
    both = everything.post(
        "/tickets", {**base, "customer_id": customer.pk, "customer": {"name": "Maria"}}
    )
    assert both.status_code == 422
    theirs_ = everything.post("/tickets", {**base, "customer_id": theirs["customer_id"]})
    assert theirs_.status_code == 404
    assert not Ticket.objects.filter(tenant=studio["tenant"]).exists()


def test_invalid_fields_are_explained_in_portuguese_with_pydantics_code(studio, dave):
    integrator = Integrator(make_key(studio["tenant"], dave, sell=True), "pt-BR")
    response = integrator.post(
        "/tickets", {"services": [], "customer": {"name": ""}, "priority": "vip"}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Pedido inválido"
    errors = {e["field"]: e for e in problem["errors"]}
    assert errors["consent_version"]["message"] == "Obrigatório."
    assert errors["consent_version"]["code"] == "missing"
    assert errors["services"]["message"] == "Pelo menos 1 itens."
    assert errors["customer.name"]["message"] == "Pelo menos 1 caracteres."
    assert errors["priority"]["message"].startswith("Deve ser um de:")
    both = integrator.post(
        "/tickets",
        {"services": [1], "customer_id": 1, "customer": {"name": "A"}, "consent_version": "x"},
    )
    assert both.json()["errors"][0]["message"] == "Informe customer ou customer_id, não os dois."
    # Ninja's Schema reads attributes of anything; a list is not an object of defaults.
    listed = integrator.post("/tickets", {**_sale(studio), "payment": [None, None]})
    assert listed.status_code == 422
    assert listed.json()["errors"][0] == {
        "field": "payment",
        "message": "Deve ser um objeto.",
        "code": "model_type",
    }
    english = Integrator(make_key(studio["tenant"], dave, sell=True)).post("/tickets", {})
    assert {e["message"] for e in english.json()["errors"]} == {"Required."}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_integrations_racing_for_the_last_session_sell_it_once(tenant, dave, cryo):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    make_device(tenant, "Crio 1", [cryo])
    customer, _sold = with_sessions(tenant, [cryo], sessions=1)
    secret = make_key(tenant, dave, sell=True)
    body = {
        "services": [cryo.pk],
        "customer_id": customer.pk,
        "use_sessions": [cryo.pk],
        "consent_version": "2026-01",
    }

    def post(_):
        try:
            # Each with its own Idempotency-Key: four sales, not retries of one.
            return Integrator(secret).post("/tickets", body).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(post, range(4)))
    assert statuses == [201, 422, 422, 422]
    assert Ticket.objects.count() == 1
    assert CreditEntry.objects.filter(kind="spent").count() == 1
