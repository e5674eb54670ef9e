"""Health waivers: a service's questionnaire answered and signed at the kiosk, kept as an
outcome only (LGPD art. 11), valid for a CPF until it expires or the questions change, and
cleared by the team after a conversation."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from customers.models import Customer
from equipment.models import Kind
from ops import retention
from tenants.models import AuditAction, AuditLog
from tests.conftest import make_device, make_ticket
from tests.test_customers import CPF, customer_of
from tests.test_customers_kiosk import start_cart
from tests.test_kiosk import identify, kiosk_cart, pair, url
from tests.test_panel import panel_url, pick_station
from tickets import waivers
from tickets.models import (
    Questionnaire,
    Ticket,
    Waiver,
    WaiverOutcome,
    WaiverQuestion,
)

QUESTIONS = [
    ("Você tem doença cardíaca ou usa marca-passo?", True),
    ("Sua pressão arterial está controlada?", False),
]


def questionnaire_for(service, questions=QUESTIONS, months=12) -> Questionnaire:
    questionnaire = Questionnaire.objects.create(
        tenant=service.tenant, service=service, validity_months=months
    )
    for position, (text, blocks_on) in enumerate(questions):
        WaiverQuestion.objects.create(
            questionnaire=questionnaire, text=text, blocks_on=blocks_on, position=position
        )
    waivers.publish(questionnaire)
    return questionnaire


def on_file(service, cpf=CPF, *, answers=(False, True), signed_at=None) -> Waiver:
    """A waiver of the service's current version, signed by the customer with this CPF."""
    customer = Customer.objects.filter(tenant=service.tenant, cpf=cpf).first() or customer_of(
        service.tenant, cpf=cpf
    )
    version = waivers.current_version(service.questionnaire)
    waiver = waivers.sign(service.tenant, version, list(answers), signed_name="Maria", cpf=cpf)
    assert waiver.customer == customer
    if signed_at is not None:
        Waiver.objects.filter(pk=waiver.pk).update(
            signed_at=signed_at, valid_until=waivers.add_months(signed_at, 12)
        )
    return waiver


@pytest.fixture
def kiosk_client(tenant, cryo, boots) -> Client:
    make_device(tenant, "Crio 1", [cryo])
    make_device(tenant, "Botas 1", [boots])
    client = Client()
    pair(client, tenant, make_device(tenant, "Totem 1", kind=Kind.KIOSK))
    return client


def answer(client, tenant, answers=("no", "yes"), name="Maria Souza", **extra):
    version = waivers.to_sign(tenant, client_cart(client, tenant)["services"], cpf="")
    data = {"signed_name": name, **extra}
    if version and "version" not in extra:
        data["version"] = waivers.current_version(version[0].questionnaire).pk
    for i, value in enumerate(answers):
        data[f"answer-{i}"] = value
    return client.post(url(tenant, "kiosk_waiver"), data)


def client_cart(client, tenant) -> dict:
    return kiosk_cart(client)


# --- the domain rule -----------------------------------------------------------------------------


def test_a_service_with_a_questionnaire_is_not_sold_without_a_valid_waiver(tenant, cryo):
    questionnaire_for(cryo)
    with pytest.raises(ValidationError) as refused:
        make_ticket(tenant, [cryo], cpf=CPF)
    assert "services" in refused.value.message_dict
    assert not Ticket.objects.exists()


def test_a_valid_waiver_on_file_sells_the_service_without_asking(tenant, cryo):
    questionnaire_for(cryo)
    on_file(cryo)
    assert waivers.to_sign(tenant, [cryo.pk], cpf=CPF) == []
    assert make_ticket(tenant, [cryo], cpf=CPF).lines.count() == 1


def test_an_expired_waiver_is_asked_again(tenant, cryo):
    questionnaire_for(cryo, months=12)
    on_file(cryo, signed_at=timezone.now() - timedelta(days=370))
    assert [v.questionnaire.service for v in waivers.to_sign(tenant, [cryo.pk], cpf=CPF)] == [cryo]
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=CPF)


def test_changing_the_questions_makes_a_new_version_and_old_signatures_ask_again(tenant, cryo):
    questionnaire = questionnaire_for(cryo)
    old = on_file(cryo)
    questionnaire.validity_months = 6  # not the questions: no new version
    questionnaire.save()
    assert waivers.publish(questionnaire).number == 1
    WaiverQuestion.objects.create(questionnaire=questionnaire, text="Está grávida?", position=9)
    new = waivers.publish(questionnaire)
    assert new.number == 2 and len(new.questions) == 3
    old.refresh_from_db()
    assert old.version.number == 1 and len(old.version.questions) == 2  # tied to its version
    assert waivers.to_sign(tenant, [cryo.pk], cpf=CPF) == [new]


def test_a_blocking_answer_needs_staff_and_is_not_valid(tenant, cryo):
    questionnaire_for(cryo)
    waiver = on_file(cryo, answers=(True, True))
    assert waiver.outcome == WaiverOutcome.NEEDS_STAFF
    assert waivers.to_sign(tenant, [cryo.pk], cpf=CPF)
    # The other question blocks on "no".
    assert on_file(cryo, answers=(False, False)).outcome == WaiverOutcome.NEEDS_STAFF


def test_a_walk_in_waiver_serves_only_its_own_sale(tenant, cryo):
    questionnaire_for(cryo)
    version = waivers.current_version(cryo.questionnaire)
    signed = waivers.sign(tenant, version, [False, True], signed_name="Ana")
    ticket = make_ticket(tenant, [cryo], customer_name="Ana", waivers=[signed.pk])
    assert Waiver.objects.get().ticket == ticket and signed.customer is None
    # The next walk-in (no CPF, nothing signed) answers again.
    assert waivers.to_sign(tenant, [cryo.pk], cpf="") == [version]
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], customer_name="Ana")


def test_a_first_visits_waiver_becomes_the_new_customers(tenant, cryo):
    questionnaire_for(cryo)
    version = waivers.current_version(cryo.questionnaire)
    signed = waivers.sign(tenant, version, [False, True], signed_name="Maria", cpf=CPF)
    assert signed.customer is None  # no record yet: the ticket creates it
    make_ticket(tenant, [cryo], cpf=CPF, waivers=[signed.pk])
    signed.refresh_from_db()
    assert signed.customer.cpf == CPF
    assert waivers.to_sign(tenant, [cryo.pk], cpf=CPF) == []  # on file for the next visit


def test_another_studios_waiver_does_not_count(tenant, other_tenant, cryo):
    from tests.conftest import make_service

    their_cryo = make_service(other_tenant, "Crioterapia", "C", "100.00", 10, 0)
    questionnaire_for(their_cryo)
    on_file(their_cryo)
    questionnaire_for(cryo)
    assert waivers.to_sign(tenant, [cryo.pk], cpf=CPF)


# --- the kiosk -----------------------------------------------------------------------------------


def test_the_kiosk_asks_the_form_after_the_details_and_sells_with_it(tenant, cryo, kiosk_client):
    questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo])
    assert identify(kiosk_client, tenant)["Location"].endswith("/termo/")
    page = kiosk_client.get(url(tenant, "kiosk_waiver")).content.decode()
    assert "Termo de saúde: Crioterapia" in page and "Concordo" in page
    assert QUESTIONS[0][0] in page
    assert answer(kiosk_client, tenant)["Location"].endswith("/termo/")
    assert kiosk_client.get(url(tenant, "kiosk_waiver"))["Location"].endswith("/resumo/")
    summary = kiosk_client.get(url(tenant, "kiosk_summary"))
    kiosk_client.post(
        url(tenant, "kiosk_summary"), {"method": "cash", "key": summary.context["cart"]["key"]}
    )
    ticket = Ticket.objects.get()
    waiver = Waiver.objects.get()
    assert waiver.ticket == ticket and waiver.customer == ticket.customer
    assert waiver.outcome == WaiverOutcome.VALID and waiver.signed_name == "Maria Souza"


def test_a_customer_with_a_valid_waiver_is_not_asked(tenant, cryo, kiosk_client):
    questionnaire_for(cryo)
    on_file(cryo)
    start_cart(kiosk_client, tenant, [cryo])
    assert identify(kiosk_client, tenant)["Location"].endswith("/resumo/")


def test_every_question_and_the_name_are_needed(tenant, cryo, kiosk_client):
    questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    page = answer(kiosk_client, tenant, answers=("no",)).content.decode()
    assert "Responda todas as perguntas." in page
    page = answer(kiosk_client, tenant, name="").content.decode()
    assert "Digite seu nome para assinar." in page
    assert not Waiver.objects.exists()


def test_a_blocking_answer_refuses_that_service_only_and_says_talk_to_the_team(
    tenant, cryo, boots, kiosk_client
):
    questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo, boots])
    identify(kiosk_client, tenant)
    response = answer(kiosk_client, tenant, answers=("yes", "yes"))
    assert client_cart(kiosk_client, tenant)["services"] == [boots.pk]
    response = kiosk_client.get(response["Location"], follow=True)
    page = response.content.decode()
    assert "Crioterapia: fale com a equipe." in page
    # Nothing else about it: no question, no reason.
    assert QUESTIONS[0][0] not in page and "cardíaca" not in page
    kiosk_client.post(
        url(tenant, "kiosk_summary"),
        {"method": "cash", "key": client_cart(kiosk_client, tenant)["key"]},
    )
    ticket = Ticket.objects.get()
    assert [line.service for line in ticket.lines.all()] == [boots]
    assert Waiver.objects.get().ticket == ticket  # the panel warns on its lines


def test_a_blocking_answer_on_the_only_service_goes_back_to_the_services(
    tenant, cryo, kiosk_client
):
    questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    assert answer(kiosk_client, tenant, answers=("yes", "no"))["Location"].endswith("/servicos/")


def test_a_walk_in_answers_every_time(tenant, cryo, kiosk_client):
    questionnaire_for(cryo)
    for _visit in range(2):
        start_cart(kiosk_client, tenant, [cryo])
        assert identify(kiosk_client, tenant, customer_cpf="")["Location"].endswith("/termo/")
        answer(kiosk_client, tenant)
        kiosk_client.post(
            url(tenant, "kiosk_summary"),
            {"method": "cash", "key": client_cart(kiosk_client, tenant)["key"]},
        )
        kiosk_client.post(url(tenant, "kiosk_leave"))
    assert Waiver.objects.filter(customer__isnull=True).count() == 2
    assert Ticket.objects.count() == 2


def test_questions_changed_while_answering_are_asked_again(tenant, cryo, kiosk_client):
    questionnaire = questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    old = waivers.current_version(questionnaire).pk
    WaiverQuestion.objects.create(questionnaire=questionnaire, text="Está grávida?", position=9)
    waivers.publish(questionnaire)
    page = answer(kiosk_client, tenant, version=old).content.decode()
    assert "As perguntas foram atualizadas" in page and "Está grávida?" in page
    assert not Waiver.objects.exists()


# --- LGPD art. 11: no answer is kept anywhere ----------------------------------------------------


def test_no_answer_is_stored_anywhere_nor_logged(tenant, cryo, boots, kiosk_client, caplog):
    """The answers exist only in the request: not in a waiver, not in any table (history
    included), not in the session, not in a log line."""
    marker = "RESPOSTA-SECRETA"
    questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo, boots])
    identify(kiosk_client, tenant)
    caplog.set_level(logging.DEBUG)
    # A value that is not yes/no is refused and must leave no trace either.
    answer(kiosk_client, tenant, answers=(marker, "yes"))
    answer(kiosk_client, tenant, answers=("yes", "no"))
    assert Waiver.objects.get().outcome == WaiverOutcome.NEEDS_STAFF
    kiosk_client.post(
        url(tenant, "kiosk_summary"),
        {"method": "cash", "key": client_cart(kiosk_client, tenant)["key"]},
    )
    # The waiver's own columns: version, time, name signed, outcome, clearance. Nothing else.
    fields = {f.name for f in Waiver._meta.get_fields()}
    assert not {f for f in fields if "answer" in f or "respost" in f}
    # Every row of every table, history tables included, and the sessions' data.
    dump = io.StringIO()
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            dump.write(serializers.serialize("json", model._default_manager.all()))
    from django.contrib.sessions.models import Session

    for session in Session.objects.all():
        dump.write(str(session.get_decoded()))
    text = dump.getvalue()
    assert marker not in text
    assert "answer-0" not in text and "answer-1" not in text
    assert marker not in caplog.text and "answer-" not in caplog.text
    cart = client_cart(kiosk_client, tenant)
    assert not any("answer" in key for key in cart)


# --- the team ------------------------------------------------------------------------------------


@pytest.fixture
def refused_ticket(tenant, cryo, boots):
    """A ticket for boots whose cryotherapy form blocked: it waits for the team."""
    questionnaire_for(cryo)
    version = waivers.current_version(cryo.questionnaire)
    signed = waivers.sign(tenant, version, [True, True], signed_name="Maria", cpf=CPF)
    return make_ticket(tenant, [boots], cpf=CPF, waivers=[signed.pk])


def test_the_panel_warns_on_each_line_of_a_ticket_whose_form_needs_staff(
    client, alice, tenant, boots, refused_ticket
):
    from tests.test_customers import pay

    pay(refused_ticket)
    client.force_login(alice)
    pick_station(client, tenant, make_device(tenant, "Botas 2", [boots]))
    page = client.get(panel_url(tenant)).content.decode()
    assert "Termo pendente: fale com o cliente" in page
    detail = client.get(panel_url(tenant, "linha", refused_ticket.lines.get().pk)).content.decode()
    assert "Liberar o termo" in detail and "Crioterapia" in detail


def test_an_operator_clears_the_form_with_a_reason_and_it_is_audited(
    client, alice, tenant, cryo, refused_ticket
):
    client.force_login(alice)
    action = panel_url(tenant, "senha", refused_ticket.pk, "liberar-termo")
    client.post(action, {"reason": ""})
    assert Waiver.objects.get().outcome == WaiverOutcome.NEEDS_STAFF
    client.post(action, {"reason": "conversou com a fisioterapeuta; liberado"})
    waiver = Waiver.objects.get()
    assert waiver.outcome == WaiverOutcome.VALID and waiver.cleared_by == alice
    assert waiver.valid_until > timezone.now() + timedelta(days=360)
    entry = AuditLog.objects.get(action=AuditAction.WAIVER_CLEARED)
    assert entry.user == alice and "liberado" in str(entry.data)
    # Now valid for this CPF: the next visit sells cryotherapy without asking.
    assert waivers.to_sign(tenant, [cryo.pk], cpf=CPF) == []


def test_an_outsider_cannot_clear_another_studios_form(client, charlie, tenant, refused_ticket):
    client.force_login(charlie)
    action = panel_url(tenant, "senha", refused_ticket.pk, "liberar-termo")
    assert client.post(action, {"reason": "x"}).status_code == 404
    assert Waiver.objects.get().outcome == WaiverOutcome.NEEDS_STAFF


# --- LGPD export, erase, retention ---------------------------------------------------------------


def test_the_export_lists_the_waivers_without_answers(tenant, cryo):
    questionnaire_for(cryo)
    on_file(cryo)
    exported = retention.export_customer(tenant, CPF)
    [waiver] = exported["customer"]["health_waivers"]
    assert waiver["service"] == "Crioterapia" and waiver["outcome"] == "valid"
    assert waiver["questionnaire_version"] == 1
    assert not any("answer" in key for key in waiver)


def test_erasing_a_customer_deletes_their_waivers(tenant, cryo):
    questionnaire_for(cryo)
    on_file(cryo)
    retention.erase_customer(tenant, CPF)
    assert not Waiver.objects.exists()


def test_retention_deletes_long_expired_and_abandoned_waivers(tenant, cryo):
    questionnaire_for(cryo)
    version = waivers.current_version(cryo.questionnaire)
    long_ago = timezone.now() - timedelta(days=800)
    on_file(cryo, signed_at=long_ago)
    abandoned = waivers.sign(tenant, version, [False, True], signed_name="Ana")
    Waiver.objects.filter(pk=abandoned.pk).update(signed_at=timezone.now() - timedelta(days=2))
    kept = on_file(cryo)
    assert retention.purge(apply=True).waivers_deleted == 2
    assert list(Waiver.objects.all()) == [kept]
    call_command("purge_old_data", stdout=io.StringIO())


def test_going_back_to_the_details_keeps_the_form_signed_for_the_same_cpf(
    tenant, cryo, kiosk_client
):
    questionnaire_for(cryo)
    start_cart(kiosk_client, tenant, [cryo])
    identify(kiosk_client, tenant)
    answer(kiosk_client, tenant)
    assert identify(kiosk_client, tenant)["Location"].endswith("/resumo/")
    other = identify(kiosk_client, tenant, customer_cpf="111.444.777-35")
    assert other["Location"].endswith("/termo/")  # another person answers for themselves


# --- the manager's questionnaire in admin --------------------------------------------------------


def questionnaire_form(tenant, cryo, questions, pk=None) -> dict:
    data = {
        "tenant": tenant.pk,
        "service": cryo.pk,
        "validity_months": 12,
        "is_active": "on",
        "questions-TOTAL_FORMS": str(len(questions)),
        "questions-INITIAL_FORMS": "0",
        "questions-MIN_NUM_FORMS": "0",
        "questions-MAX_NUM_FORMS": "1000",
    }
    for i, (text, blocks_on, question_pk) in enumerate(questions):
        data |= {
            f"questions-{i}-position": i,
            f"questions-{i}-text": text,
            f"questions-{i}-blocks_on": "True" if blocks_on else "False",
            f"questions-{i}-questionnaire": pk or "",  # the parent, in the change page
            f"questions-{i}-id": question_pk or "",
        }
    if pk:
        data["questions-INITIAL_FORMS"] = str(sum(1 for *_x, q in questions if q))
    return data


def test_a_manager_writes_the_form_in_admin_and_editing_it_publishes_a_new_version(
    client, tenant, cryo, bob
):
    client.force_login(bob)
    add = client.post(
        "/admin/tickets/questionnaire/add/",
        questionnaire_form(tenant, cryo, [("Usa marca-passo?", True, None)]),
    )
    assert add.status_code == 302, add.context and add.context["errors"]
    questionnaire = Questionnaire.objects.get()
    assert waivers.current_version(questionnaire).number == 1
    question = questionnaire.questions.get()
    page = f"/admin/tickets/questionnaire/{questionnaire.pk}/change/"
    same = questionnaire_form(
        tenant, cryo, [("Usa marca-passo?", True, question.pk)], pk=questionnaire.pk
    )
    same["validity_months"] = 6
    assert client.post(page, same).status_code == 302
    assert waivers.current_version(questionnaire).number == 1  # only the validity changed
    edited = questionnaire_form(
        tenant,
        cryo,
        [("Usa marca-passo ou desfibrilador?", True, question.pk)],
        pk=questionnaire.pk,
    )
    assert client.post(page, edited).status_code == 302
    current = waivers.current_version(questionnaire)
    assert current.number == 2
    assert current.questions == [{"text": "Usa marca-passo ou desfibrilador?", "blocks_on": True}]
