"""The admin: scoped to the tenants a user manages, CPF masked, status moved only by actions."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from equipment.models import Equipment
from tenants.models import AuditAction, AuditLog, Membership, Role
from tests.conftest import make_device, make_service, make_ticket
from tickets.models import (
    DailyCounter,
    Extra,
    Service,
    Ticket,
    TicketLine,
    TicketStatus,
    change_ticket_status,
)

T = TicketStatus
CPF = "52998224725"
CPF_TYPED = "529.982.247-25"


def changelist(model: str) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_changelist")


def listed(client, model: str, query: str = "") -> set[int]:
    response = client.get(changelist(model) + query)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def moved_to(ticket: Ticket, status: str) -> Ticket:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        change_ticket_status(ticket, status)
    return ticket


def act(client, action: str, tickets, **fields):
    data = {"action": action, "_selected_action": [t.pk for t in tickets], **fields}
    return client.post(changelist("tickets.ticket"), data)


@pytest.fixture
def theirs(other_tenant):
    """A ticket, service, extra and device of the other tenant."""
    service = make_service(other_tenant, "Sauna", "S")
    Extra.objects.create(tenant=other_tenant, name="Água", price="3.00")
    make_device(other_tenant, "Sauna 1", [service])
    return make_ticket(other_tenant, [service], customer_name="Outro Cliente")


@pytest.fixture
def ours(tenant, cryo, towel):
    make_device(tenant, "Criocâmara 1", [cryo])
    return make_ticket(tenant, [cryo], cpf=CPF_TYPED, phone="11912345678", extras={towel.id: 1})


def test_a_superuser_sees_the_tickets_of_every_tenant(admin_client, ours, theirs):
    assert listed(admin_client, "tickets.ticket") == {ours.pk, theirs.pk}


@pytest.mark.parametrize("model", [Ticket, TicketLine, Service, Extra, Equipment])
def test_a_manager_sees_only_his_tenants_rows(client, bob, tenant, ours, theirs, model):
    client.force_login(bob)
    rows = listed(client, model._meta.label_lower)
    assert rows
    assert rows == set(model.objects.filter(tenant=tenant).values_list("pk", flat=True))


def test_an_outsider_gets_404_for_a_ticket_of_another_tenant(client, charlie, ours):
    client.force_login(charlie)
    change = reverse("admin:tickets_ticket_change", args=[ours.pk])
    history = reverse("admin:tickets_ticket_history", args=[ours.pk])
    assert client.get(change).status_code == 404
    assert client.get(history).status_code == 404
    assert ours.pk not in listed(client, "tickets.ticket")
    assert ours.pk not in listed(client, "tickets.ticket", f"?q={CPF_TYPED}")
    assert client.get(reverse("admin:tickets_ticket_change", args=["abc"])).status_code == 404
    assert client.get(reverse("admin:tickets_ticket_history", args=["abc"])).status_code == 404


def test_an_operator_is_sent_to_the_admin_login(client, alice):
    client.force_login(alice)
    response = client.get(changelist("tickets.ticket"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_a_staff_operator_gets_no_tenant_model_in_the_admin(client, alice):
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    assert client.get(changelist("tickets.ticket")).status_code == 403
    assert b"tickets/ticket/" not in client.get(reverse("admin:index")).content


def test_searching_a_cpf_typed_with_punctuation_finds_the_ticket(client, bob, ours, tenant, cryo):
    other = make_ticket(tenant, [cryo], customer_name="Sem CPF")
    client.force_login(bob)
    assert listed(client, "tickets.ticket", f"?q={CPF_TYPED}") == {ours.pk}
    assert listed(client, "tickets.ticket", "?q=(11) 91234-5678") == {ours.pk}
    assert listed(client, "tickets.ticket", "?q=Sem CPF") == {other.pk}


def test_the_ticket_pages_show_cpf_and_phone_masked_never_raw(client, bob, ours):
    client.force_login(bob)
    for url in (
        changelist("tickets.ticket"),
        reverse("admin:tickets_ticket_change", args=[ours.pk]),
        changelist("tickets.ticketline"),
        reverse("admin:tickets_ticketline_change", args=[ours.lines.first().pk]),
    ):
        page = client.get(url).content.decode()
        assert CPF not in page and CPF_TYPED not in page and "91234-5678" not in page
    page = client.get(changelist("tickets.ticket")).content.decode()
    assert "***.982.247-**" in page
    assert "(11) *****-5678" in page


def test_status_is_no_form_field_on_the_ticket_page(client, bob, ours):
    client.force_login(bob)
    url = reverse("admin:tickets_ticket_change", args=[ours.pk])
    form = client.get(url).context["adminform"].form
    assert "status" not in form.fields
    assert set(form.fields) == {"customer_name", "operator_notes"}
    data = {"customer_name": "Maria S.", "status": T.COMPLETED}
    for prefix, count in (("lines", 1), ("extras", 1)):
        data |= {f"{prefix}-TOTAL_FORMS": count, f"{prefix}-INITIAL_FORMS": count}
    response = client.post(url, data)
    assert response.status_code == 302
    ours.refresh_from_db()
    assert (ours.customer_name, ours.status) == ("Maria S.", T.PENDING_PAYMENT)


def test_the_change_status_page_offers_only_what_the_machine_allows(client, bob, ours):
    client.force_login(bob)
    response = act(client, "change_status", [ours])
    assert response.status_code == 200
    choices = {value for value, _label in response.context["form"].fields["target"].choices}
    assert choices == {T.CANCELLED}  # paying by hand is the payments' confirmation


def test_a_queued_ticket_follows_its_lines_so_only_cancel_and_expire_are_offered(client, bob, ours):
    moved_to(ours, T.PAID)
    client.force_login(bob)
    act(client, "change_status", [ours], apply="1", target=T.IN_QUEUE, reason="sem impressora")
    response = act(client, "change_status", [ours])
    choices = {value for value, _label in response.context["form"].fields["target"].choices}
    assert choices == {T.CANCELLED, T.EXPIRED}
    act(client, "change_status", [ours], apply="1", target=T.EXPIRED, reason="foi embora")
    ours.refresh_from_db()
    assert ours.status == T.EXPIRED
    assert ours.lines.get().status == "no_show"  # the line went along


def test_change_status_moves_a_ticket_and_records_who_and_why(client, bob, ours):
    moved_to(ours, T.PAID)
    client.force_login(bob)
    response = act(
        client, "change_status", [ours], apply="1", target=T.PRINT_ERROR, reason="sem papel"
    )
    assert response.status_code == 302
    ours.refresh_from_db()
    assert ours.status == T.PRINT_ERROR and ours.print_error_at is not None
    last = ours.history.latest()
    assert (last.history_user, last.history_change_reason) == (bob, "sem papel")
    history = client.get(reverse("admin:tickets_ticket_history", args=[ours.pk]))
    assert "sem papel" in history.content.decode()
    entry = AuditLog.objects.get(action=AuditAction.STATUS_CHANGED)
    assert (entry.user, entry.entity_id, entry.tenant) == (bob, str(ours.pk), ours.tenant)
    assert entry.data == {
        "ticket": ours.number,
        "from": T.PAID,
        "to": T.PRINT_ERROR,
        "reason": "sem papel",
    }


def test_change_status_into_the_queue_gives_the_lines_their_place(client, bob, ours):
    moved_to(ours, T.PAID)
    client.force_login(bob)
    act(client, "change_status", [ours], apply="1", target=T.IN_QUEUE, reason="sem impressora")
    ours.refresh_from_db()
    assert ours.status == T.IN_QUEUE
    assert ours.lines.get().queued_at is not None


def test_a_refused_move_names_ticket_and_states_and_changes_nothing(
    client, bob, ours, tenant, cryo
):
    paid = moved_to(make_ticket(tenant, [cryo], customer_name="Ana"), T.PAID)
    client.force_login(bob)
    response = act(
        client, "change_status", [ours, paid], apply="1", target=T.PRINTING, reason="teste"
    )
    ours.refresh_from_db()
    paid.refresh_from_db()
    assert ours.status == T.PENDING_PAYMENT
    assert ours.history.count() == 1
    assert paid.status == T.PRINTING
    audited = AuditLog.objects.filter(action=AuditAction.STATUS_CHANGED)
    assert [e.entity_id for e in audited] == [str(paid.pk)]
    errors = [str(m) for m in response.wsgi_request._messages if m.level_tag == "error"]
    assert len(errors) == 1
    with translation.override("pt-br"):
        for part in (ours.number, str(T.PENDING_PAYMENT.label), str(T.PRINTING.label)):
            assert part in errors[0]


def test_a_move_without_reason_is_refused_by_the_form(client, bob, ours):
    client.force_login(bob)
    response = act(client, "change_status", [ours], apply="1", target=T.PAID, reason=" ")
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    ours.refresh_from_db()
    assert ours.status == T.PENDING_PAYMENT


def test_cancelling_needs_a_reason_cancels_the_lines_and_returns_stock(client, bob, ours, towel):
    client.force_login(bob)
    assert act(client, "cancel_tickets", [ours], apply="1", reason="").status_code == 200
    ours.refresh_from_db()
    assert ours.status == T.PENDING_PAYMENT
    act(client, "cancel_tickets", [ours], apply="1", reason="desistiu")
    ours.refresh_from_db()
    towel.refresh_from_db()
    assert (ours.status, ours.cancellation_reason) == (T.CANCELLED, "desistiu")
    assert set(ours.lines.values_list("status", flat=True)) == {"cancelled"}
    assert towel.stock == 2
    assert ours.history.latest().history_user == bob


def test_an_outsider_cannot_act_on_another_tenants_ticket(client, charlie, ours):
    client.force_login(charlie)
    act(client, "cancel_tickets", [ours], apply="1", reason="não é meu")
    ours.refresh_from_db()
    assert ours.status == T.PENDING_PAYMENT


def test_the_ticket_list_costs_the_same_queries_for_2_or_20_tickets(
    client, bob, tenant, cryo, boots
):
    client.force_login(bob)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(changelist("tickets.ticket")).status_code == 200
        return len(captured)

    for _ in range(2):
        make_ticket(tenant, [cryo, boots], cpf=CPF)
    with_two = queries()
    for _ in range(18):
        make_ticket(tenant, [cryo, boots])
    assert queries() == with_two


def test_soft_delete_hides_a_service_and_real_deletion_is_not_offered(client, bob, cryo):
    client.force_login(bob)
    url = changelist("tickets.service")
    response = client.get(url)
    assert "delete_selected" not in dict(response.context["action_form"].fields["action"].choices)
    client.post(url, {"action": "soft_delete", "_selected_action": [cryo.pk], "index": 0})
    cryo.refresh_from_db()
    assert cryo.deleted_at is not None
    assert cryo.history.latest().history_user == bob
    assert cryo.pk not in listed(client, "tickets.service")
    assert cryo.pk in listed(client, "tickets.service", "?deleted=yes")
    delete = reverse("admin:tickets_service_delete", args=[cryo.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Service.objects.filter(pk=cryo.pk).exists()


def test_choices_in_a_managers_forms_are_his_tenants_rows(client, bob, tenant, cryo, theirs):
    client.force_login(bob)
    form = client.get(reverse("admin:equipment_equipment_add")).context["adminform"].form
    assert list(form.fields["tenant"].queryset) == [tenant]
    assert list(form.fields["services"].queryset) == [cryo]


def test_a_manager_views_his_tenant_but_only_its_administrator_edits_it(
    client, bob, tenant, other_tenant, django_user_model
):
    client.force_login(bob)
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    assert client.get(url).context["has_change_permission"] is False
    assert client.post(url, {"name": "Renamed"}).status_code == 403
    assert (
        client.get(reverse("admin:tenants_tenant_change", args=[other_tenant.pk])).status_code
        == 404
    )
    membership = Membership.objects.get(user=bob)
    membership_url = reverse("admin:tenants_membership_change", args=[membership.pk])
    assert client.post(membership_url, {"role": Role.ADMIN}).status_code == 403

    owner = django_user_model.objects.create_user("dora", is_staff=True)
    Membership.objects.create(user=owner, tenant=tenant, role=Role.ADMIN)
    client.force_login(owner)
    assert client.get(url).context["has_change_permission"] is True
    response = client.post(membership_url, {"user": bob.pk, "role": Role.ADMIN})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_change_status_works_from_the_tickets_own_page(client, bob, ours):
    client.force_login(bob)
    url = reverse("admin:tickets_ticket_change", args=[ours.pk])
    assert "change_status" in client.get(url).content.decode()
    data = {"CHANGE_FORM-action": "change_status", "_selected_action": [ours.pk]}
    page = client.post(url, data)
    assert page.status_code == 200
    assert 'name="CHANGE_FORM-action"' in page.content.decode()
    response = client.post(url, data | {"apply": "1", "target": T.CANCELLED, "reason": "desistiu"})
    assert response.status_code == 302
    ours.refresh_from_db()
    assert ours.status == T.CANCELLED


def test_every_admin_page_of_these_apps_opens(admin_client, bob, ours, tenant, cryo, towel):
    rows = [
        tenant,
        Membership.objects.get(user=bob),
        cryo,
        towel,
        ours,
        ours.lines.first(),
        DailyCounter.objects.get(tenant=tenant),
        Equipment.objects.get(tenant=tenant),
    ]
    for row in rows:
        meta = row._meta
        base = f"admin:{meta.app_label}_{meta.model_name}"
        assert admin_client.get(reverse(f"{base}_changelist")).status_code == 200
        assert admin_client.get(reverse(f"{base}_change", args=[row.pk])).status_code == 200
        if hasattr(row, "history"):
            assert admin_client.get(reverse(f"{base}_history", args=[row.pk])).status_code == 200
    for name in ("tenants_tenant", "tenants_membership", "tickets_service", "tickets_extra"):
        assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 200
    assert admin_client.get(reverse("admin:tickets_ticket_add")).status_code == 403


def test_every_list_shows_each_row_at_its_own_tenants_clock(admin_client, ours, theirs):
    """A superuser's lists mix a studio in São Paulo (UTC−3) and one in Manaus (UTC−4): the
    same moment reads 12:00 on the first's rows and 11:00 on the second's, never one zone for
    the page."""
    from datetime import UTC, datetime

    from payments.models import PaymentSession
    from payments.sessions import start_payment

    moment = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    ours.tenant.timezone = "America/Sao_Paulo"
    ours.tenant.save()
    theirs.tenant.timezone = "America/Manaus"
    theirs.tenant.save()
    for ticket in (ours, theirs):
        start_payment(ticket, "cash")
        AuditLog.objects.create(tenant=ticket.tenant, action=AuditAction.LOGIN, label="x")
    Ticket.objects.update(created_at=moment)
    TicketLine.objects.update(queued_at=moment)
    PaymentSession.objects.update(created_at=moment)
    AuditLog.objects.update(created_at=moment)
    expected = {ours.tenant_id: "01/12/2026 12:00", theirs.tenant_id: "01/12/2026 11:00"}

    for model, rows in [
        ("tickets.ticket", Ticket.objects.all()),
        ("tickets.ticketline", TicketLine.objects.all()),
        ("payments.paymentsession", PaymentSession.objects.all()),
        ("tenants.auditlog", AuditLog.objects.filter(tenant__isnull=False)),
    ]:
        page = admin_client.get(changelist(model)).content.decode()
        table = page[page.index("<tbody>") : page.index("</tbody>")]
        for row in rows:
            link = reverse(f"admin:{model.replace('.', '_')}_change", args=[row.pk])
            html = next(tr for tr in table.split("<tr") if f'href="{link}"' in tr)
            assert expected[row.tenant_id] in html, (model, row.tenant_id, html)
            other = next(v for k, v in expected.items() if k != row.tenant_id)
            assert other not in html, (model, row.tenant_id)


def test_a_managers_date_filters_count_days_at_his_studios_clock(client, bob, tenant):
    """Bob's studio is in Manaus: "today" in the audit log's date filter starts at Manaus's
    midnight, not São Paulo's."""
    tenant.timezone = "America/Manaus"
    tenant.save()
    client.force_login(bob)
    response = client.get(changelist("tenants.auditlog"))
    assert response.status_code == 200
    spec = next(f for f in response.context["cl"].filter_specs if f.field_path == "created_at")
    today = dict(spec.links)["Hoje"]
    since = next(v for k, v in today.items() if k.endswith("__gte"))
    assert (since.hour, since.utcoffset().total_seconds()) == (0, -4 * 3600), since
