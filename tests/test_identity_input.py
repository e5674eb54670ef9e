"""A customer's CPF, phone and name as typed in any script: stored one canonical way, so LGPD
requests, the one-customer-per-service rule and admin search find every typing; invisible
characters never reach a name."""

from __future__ import annotations

import importlib
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from equipment.models import Kind
from tenants.br import clean_name, normalize_cpf, normalize_phone
from tests.conftest import make_device, make_ticket, queued_ticket
from tests.test_admin import listed
from tests.test_kiosk import buy, fill_cart, identify, pair, url
from tickets import queue
from tickets.models import Ticket, TicketLine

CPF = "52998224725"


def typed_in(zero: int, text: str) -> str:
    """`text` with its ASCII digits written in the script whose zero is the code point `zero`."""
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


ARABIC_INDIC = typed_in(0x0660, CPF)
PERSIAN = typed_in(0x06F0, CPF)
FULLWIDTH = typed_in(0xFF10, "529.982.247-25").replace(".", "．").replace("-", "－")
DEVANAGARI = typed_in(0x0966, CPF)
INVISIBLE_NAMES = [
    "\u200b\u200c\u200d",  # zero-width space, non-joiner, joiner
    "\u2060\ufeff",  # word joiner, byte order mark
    "\u202e\u202a\u202b\u202c\u202d",  # bidi embeddings and overrides
    "\u2066\u2067\u2068\u2069",  # bidi isolates
    "\u200e \u200f \u061c",  # bidi marks, with spaces between
    "\u3164",  # Hangul filler: a letter that shows as blank
]


@pytest.mark.parametrize("typed", [ARABIC_INDIC, PERSIAN, FULLWIDTH, DEVANAGARI])
def test_a_cpf_typed_in_any_scripts_digits_is_stored_as_eleven_ascii_digits(tenant, cryo, typed):
    ticket = make_ticket(tenant, [cryo], cpf=typed)
    ticket.refresh_from_db()
    assert ticket.customer_cpf == CPF
    assert list(ticket.lines.values_list("customer_key", flat=True)) == [CPF]
    assert ticket.history.get().customer_cpf == CPF


def test_a_phone_typed_in_arabic_indic_digits_is_stored_in_ascii(tenant, cryo):
    ticket = make_ticket(tenant, [cryo], phone=typed_in(0x0660, "+55 (11) 91234-5678"))
    assert Ticket.objects.get(pk=ticket.pk).customer_phone == "11912345678"


def test_bidi_marks_around_right_to_left_digits_are_dropped_not_refused():
    assert normalize_cpf(f"\u200f{ARABIC_INDIC}\u061c") == CPF


def test_a_superscript_digit_counts_as_its_digit_since_nfkc_comes_first():
    assert normalize_cpf("529.982.247-2\u2075") == CPF  # ⁵


@pytest.mark.parametrize(
    "typed",
    [
        "529.982.247-2\u00bd",  # ½: NFKC gives "1⁄2", the fraction slash is no punctuation
        "529a98224725",
        "CPF 529.982.247-25",
        "529.982.247-25\U00010a41",  # Kharosthi one: a digit, but not a decimal one
    ],
)
def test_anything_but_digits_and_punctuation_makes_a_cpf_invalid(typed):
    with pytest.raises(ValidationError):
        normalize_cpf(typed)


def test_a_phone_with_a_letter_is_invalid():
    with pytest.raises(ValidationError):
        normalize_phone("(11) 9I234-5678")


def test_one_customer_per_service_holds_across_a_fullwidth_and_an_ascii_cpf(tenant, cryo):
    fullwidth = queued_ticket(tenant, [cryo], cpf=FULLWIDTH)
    ascii_ = queued_ticket(tenant, [cryo], cpf="529.982.247-25")
    queue.call_line(tenant, fullwidth.lines.get().pk, make_device(tenant, "Crio A", [cryo]))
    with pytest.raises(queue.QueueError, match="já está em atendimento"):
        queue.call_line(tenant, ascii_.lines.get().pk, make_device(tenant, "Crio B", [cryo]))


def test_the_lgpd_export_finds_the_tickets_of_every_typing(client, tenant, cryo, bob):
    fullwidth = make_ticket(tenant, [cryo], cpf=FULLWIDTH)
    arabic = make_ticket(tenant, [cryo], cpf=ARABIC_INDIC)
    ascii_ = make_ticket(tenant, [cryo], cpf=CPF)
    client.force_login(bob)
    numbers = {fullwidth.number, arabic.number, ascii_.number}
    for asked in ("529.982.247-25", DEVANAGARI):
        response = client.post(
            reverse("ops_customer_data", args=[tenant.slug]), {"cpf": asked, "action": "export"}
        )
        assert {t["number"] for t in json.loads(response.content)["tickets"]} == numbers


def test_the_admin_finds_a_ticket_by_its_cpf_typed_in_other_digits(client, bob, tenant, cryo):
    ticket = make_ticket(tenant, [cryo], cpf=ARABIC_INDIC)
    make_ticket(tenant, [cryo], customer_name="Sem CPF")
    client.force_login(bob)
    assert listed(client, "tickets.ticket", "?q=529.982.247-25") == {ticket.pk}
    assert listed(client, "tickets.ticket", f"?q={FULLWIDTH}") == {ticket.pk}


# --- names ---------------------------------------------------------------------------------------


@pytest.fixture
def kiosk_client(tenant, cryo) -> Client:
    make_device(tenant, "Crio 1", [cryo])
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    return client


@pytest.mark.parametrize("name", [*INVISIBLE_NAMES, "123", "...", "\u200b42\u200b"])
def test_a_name_without_a_visible_letter_is_refused_on_its_field_in_portuguese(
    kiosk_client, tenant, cryo, name
):
    kiosk_client.post(url(tenant, "kiosk_start"))
    kiosk_client.post(url(tenant, "kiosk_services"), {"toggle": cryo.pk})
    response = identify(kiosk_client, tenant, customer_name=name)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["customer_name"]
    assert errors["customer_name"][0] in (
        "Informe o nome pelo qual quer ser chamado.",
        "Digite um nome com pelo menos uma letra.",
    )
    html = response.content.decode()
    error_at = html.index('id="id_customer_name-error"')
    assert errors["customer_name"][0] in html[error_at : error_at + 200]


@pytest.mark.parametrize("name", INVISIBLE_NAMES)
def test_create_ticket_refuses_an_invisible_name_whoever_calls_it(tenant, cryo, name):
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], customer_name=name)
    assert list(refused.value.message_dict) == ["customer_name"]
    assert not Ticket.objects.exists()


def test_a_name_with_a_right_to_left_override_is_stored_without_it(kiosk_client, tenant, cryo):
    fill_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant, customer_name="Ana\u202eaicram", customer_cpf=FULLWIDTH)
    buy(kiosk_client, tenant)
    ticket = Ticket.objects.get()
    assert (ticket.customer_name, ticket.customer_cpf) == ("Anaaicram", CPF)


def test_a_name_keeps_its_accents_letters_and_inner_spaces():
    assert clean_name("  Jose\u0301\u200b  da\tSilva ") == "José da Silva"
    assert clean_name("محمد") == "محمد"


def test_the_admin_refuses_a_name_fixed_to_invisible_characters(client, bob, tenant, cryo):
    ticket = make_ticket(tenant, [cryo])
    client.force_login(bob)
    change = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    form = {"customer_name": "\u202e\u200b", "operator_notes": ""}
    for prefix in ("lines", "extras"):
        form |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    response = client.post(change, form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["customer_name"]
    assert Ticket.objects.get(pk=ticket.pk).customer_name == "Maria Souza"
    form["customer_name"] = "Maria\u202e Sousa"
    assert client.post(change, form).status_code == 302
    assert Ticket.objects.get(pk=ticket.pk).customer_name == "Maria Sousa"


# --- the data migration ------------------------------------------------------------------------

BEFORE = ("tickets", "0006_rename_ticketservice_to_ticketline")
AFTER = ("tickets", "0007_canonical_customer_identity")


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def migrate_to_latest() -> None:
    """Back to the schema the code expects: later migrations were reversed on the way back."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def stored_as_typed(ticket: Ticket, **fields) -> None:
    """What the kiosk stored before this change: the fields as typed, in row and history."""
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    Ticket.history.model.objects.filter(id=ticket.pk).update(**fields)
    if "customer_cpf" in fields:
        key = {"customer_key": fields["customer_cpf"]}
        TicketLine.objects.filter(ticket=ticket).update(**key)
        TicketLine.history.model.objects.filter(ticket_id=ticket.pk).update(**key)


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_stored_rows_canonical_and_touches_only_those(
    tenant, cryo, monkeypatch
):
    module = importlib.import_module(f"tickets.migrations.{AFTER[1]}")
    monkeypatch.setattr(module, "BATCH", 2)  # several batches from a handful of rows
    arabic = make_ticket(tenant, [cryo], cpf=CPF, phone="11912345678", customer_name="Rana")
    persian = make_ticket(tenant, [cryo], cpf=CPF, customer_name="Ana")
    fullwidth = make_ticket(tenant, [cryo], cpf=CPF)
    invisible = make_ticket(tenant, [cryo])
    for _ in range(3):
        make_ticket(tenant, [cryo], cpf=CPF, customer_name="José")  # already canonical
    try:
        migrate(BEFORE)
        stored_as_typed(
            arabic,
            customer_cpf=ARABIC_INDIC,
            customer_phone=typed_in(0x0660, "11912345678"),
            customer_name="\u200fRana\u200f",
        )
        stored_as_typed(persian, customer_cpf=PERSIAN, customer_name="Ana\u202eaicram")
        stored_as_typed(fullwidth, customer_cpf=typed_in(0xFF10, CPF))
        stored_as_typed(invisible, customer_name="\u202e\u200b")
        with CaptureQueriesContext(connection) as queries:
            migrate(AFTER)
    finally:
        migrate_to_latest()

    rows = Ticket.objects.values_list("customer_cpf", "customer_phone", "customer_name")
    assert rows.get(pk=arabic.pk) == (CPF, "11912345678", "Rana")
    assert rows.get(pk=persian.pk) == (CPF, "", "Anaaicram")
    assert rows.get(pk=fullwidth.pk) == (CPF, "", "Maria Souza")
    # Nothing visible was left to call: a placeholder, not "" (which means anonymised).
    assert rows.get(pk=invisible.pk) == ("", "", "Cliente")
    history = Ticket.history.model.objects.values_list("customer_cpf", "customer_name")
    assert history.get(id=persian.pk) == (CPF, "Anaaicram")
    keys = TicketLine.objects.exclude(ticket=invisible).values_list("customer_key", flat=True)
    assert set(keys) == {CPF}
    assert set(TicketLine.history.model.objects.values_list("customer_key", flat=True)) == {
        CPF,
        invisible.token,
    }
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    ticket_updates = [sql for sql in updates if 'UPDATE "tickets_ticket" ' in sql]
    assert len(ticket_updates) == 4  # the four tickets stored as typed, not the canonical ones


@pytest.mark.django_db(transaction=True)
def test_the_migration_leaves_a_line_that_would_break_one_customer_per_service(tenant, cryo):
    """Two active lines of one customer in one service, typed once in each script: the
    duplicate the old code let in. The migration finishes and leaves the second key alone."""
    first = queued_ticket(tenant, [cryo], cpf=CPF)
    second = queued_ticket(tenant, [cryo])
    queue.call_line(tenant, first.lines.get().pk, make_device(tenant, "Crio A", [cryo]))
    queue.call_line(tenant, second.lines.get().pk, make_device(tenant, "Crio B", [cryo]))
    try:
        migrate(BEFORE)
        stored_as_typed(second, customer_cpf=ARABIC_INDIC)
        migrate(AFTER)
    finally:
        migrate_to_latest()
    assert Ticket.objects.get(pk=second.pk).customer_cpf == CPF
    assert TicketLine.objects.get(ticket=second).customer_key == ARABIC_INDIC
    assert set(TicketLine.history.model.objects.values_list("customer_key", flat=True)) == {CPF}
