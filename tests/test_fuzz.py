"""Fuzzed form posts to the kiosk and the operator panel: any input gets an answer below 500.

Hypothesis sends random field names and values (empty, huge, unicode, numbers where text is
expected, lists) to every step of the kiosk and every panel action; the server must refuse
or accept with a message, never crash.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equipment.models import Kind
from payments.models import PaymentSettings
from payments.sessions import start_payment
from tests.conftest import make_device, make_ticket, queued_ticket
from tests.test_kiosk import kiosk_cart
from totem.models import PairingCode

FIELDS = [
    "toggle",
    "extra",
    "quantity",
    "customer_name",
    "customer_cpf",
    "customer_phone",
    "priority",
    "consent",
    "method",
    "key",
    "reason",
    "service",
    "amount_received",
    "equipment",
    "station",
    "row",
    "code",
    "next",
]
values = st.one_of(
    st.text(max_size=300),
    st.integers(min_value=-(2**63), max_value=2**63).map(str),
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "999999999999999999999", "../../", "\x00"]),
)
forms = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
fuzz = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def kiosk(tenant, cryo, boots, towel) -> Client:
    make_device(tenant, "Crio 1", [cryo])
    make_device(tenant, "Botas 1", [boots])
    device = make_device(tenant, "Totem 1", kind=Kind.KIOSK)
    client = Client()
    code = PairingCode.objects.create(tenant=tenant, equipment=device)
    paired = client.post(reverse("kiosk_pair", args=[tenant.slug]), {"code": code.code})
    assert paired.status_code == 302  # a kiosk, or every fuzzed post would only be turned away
    assert client.post(reverse("kiosk_start", args=[tenant.slug])).status_code == 302
    return client


KIOSK_STEPS = [
    "kiosk_pair",
    "kiosk_start",
    "kiosk_services",
    "kiosk_extras",
    "kiosk_identify",
    "kiosk_summary",
    "kiosk_payment",
    "kiosk_leave",
]


@pytest.mark.django_db
@fuzz
@given(step=st.sampled_from(KIOSK_STEPS), data=forms, htmx=st.booleans())
def test_the_kiosk_answers_any_post_without_a_server_error(kiosk, tenant, cryo, step, data, htmx):
    # The client outlives each example (a fixture per test): start every example mid-purchase,
    # whatever the previous one left, so the later steps are reached and not redirected.
    kiosk.post(reverse("kiosk_start", args=[tenant.slug]))
    kiosk.post(reverse("kiosk_services", args=[tenant.slug]), {"toggle": cryo.pk})
    assert kiosk_cart(kiosk)["services"] == [cryo.pk], "not mid-purchase"
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = kiosk.post(reverse(step, args=[tenant.slug]), data, **headers)
    assert response.status_code < 500, (step, data, response.status_code)


@pytest.fixture
def panel(tenant, cryo, boots, alice) -> dict:
    station = make_device(tenant, "Crio 1", [cryo, boots])
    client = Client()
    client.force_login(alice)
    # At a station, or every action would only show the station picker.
    chosen = client.post(reverse("panel_station", args=[tenant.slug]), {"station": station.pk})
    assert chosen.status_code == 302
    PaymentSettings.objects.update_or_create(tenant=tenant, defaults={"cash_enabled": True})
    waiting = queued_ticket(tenant, [cryo, boots])
    unpaid = make_ticket(tenant, [cryo])
    session = start_payment(unpaid, "cash")
    return {"client": client, "line": waiting.lines.first(), "ticket": waiting, "session": session}


LINE_ACTIONS = ["chamar", "rechamar", "iniciar", "concluir", "devolver", "ausente", "cancelar"]
TICKET_ACTIONS = ["cancelar", "reimprimir", "para-fila"]
PAYMENT_ACTIONS = ["dinheiro", "pix", "nada"]


@pytest.mark.django_db
@fuzz
@given(
    target=st.sampled_from(
        [("panel_line", a) for a in [*LINE_ACTIONS, "transferir"]]
        + [("panel_ticket", a) for a in TICKET_ACTIONS]
        + [("panel_payment", a) for a in PAYMENT_ACTIONS]
        + [("panel_call_next", None), ("panel_station", None)]
    ),
    data=forms,
    htmx=st.booleans(),
)
def test_the_panel_answers_any_post_without_a_server_error(panel, tenant, cryo, target, data, htmx):
    name, action = target
    ids = {
        "panel_line": panel["line"].pk,
        "panel_ticket": panel["ticket"].pk,
        "panel_payment": panel["session"].pk,
        "panel_call_next": cryo.pk,
    }
    args = [tenant.slug]
    if name in ids:
        args.append(ids[name])
    if action:
        args.append(action)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = panel["client"].post(reverse(name, args=args), data, **headers)
    assert response.status_code < 500, (name, action, data, response.status_code)
