"""The studio's team page: its administrator (dave) adds, changes and deactivates the
studio's people and hands over their passwords; nobody else may, and no other studio's
people are seen or touched from it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants import team
from tenants.errors import DomainError
from tenants.models import AuditAction, AuditLog, Membership, Role

PASSWORD = "ondas-do-mar-42"


def team_url(tenant, *parts) -> str:
    return f"/t/{tenant.slug}/gestao/equipe/" + "".join(f"{p}/" for p in parts)


def add_url(tenant) -> str:
    return team_url(tenant, "nova-pessoa")


def member_url(tenant, user) -> str:
    return team_url(tenant, Membership.objects.get(tenant=tenant, user=user).pk)


def new_person(**extra) -> dict:
    return {
        "first_name": "Rita",
        "last_name": "Lopes",
        "username": "rita",
        "role": Role.OPERATOR,
        "password_mode": "hand",
        "new_password1": PASSWORD,
        "new_password2": PASSWORD,
        **extra,
    }


def log_in(username: str, password: str) -> tuple[Client, object]:
    """A fresh browser through the login form; the answer after the redirects."""
    browser = Client()
    answer = browser.post(
        "/accounts/login/", {"username": username, "password": password}, follow=True
    )
    return browser, answer


def audited(tenant, action) -> list[AuditLog]:
    return list(AuditLog.objects.filter(tenant=tenant, action=action))


@pytest.fixture
def dave_client(client, dave):
    client.force_login(dave)
    return client


@pytest.fixture
def erin(django_user_model, tenant, other_tenant):
    """An operator of both studios: her account belongs to neither alone."""
    user = django_user_model.objects.create_user("erin", password="pw-erin", first_name="Erin")
    Membership.objects.create(user=user, tenant=tenant, role=Role.OPERATOR)
    Membership.objects.create(user=user, tenant=other_tenant, role=Role.MANAGER)
    return user


def test_the_admin_adds_an_operator_who_logs_in_and_reaches_the_panel(dave_client, tenant, dave):
    response = dave_client.post(add_url(tenant), new_person())
    assert response.status_code == 302
    assert response["Location"] == team_url(tenant)

    rita = get_user_model().objects.get(username="rita")
    assert (rita.first_name, rita.last_name, rita.is_active) == ("Rita", "Lopes", True)
    assert not rita.is_staff  # an operator never opens the admin
    assert Membership.objects.get(user=rita).tenant == tenant
    [entry] = audited(tenant, AuditAction.MEMBER_ADDED)
    assert entry.user == dave and entry.entity_id == str(rita.pk)
    assert entry.data == {"username": "rita", "role": "operator", "password": "set"}

    browser, answer = log_in("rita", PASSWORD)
    assert answer.redirect_chain[-1][0] == f"/t/{tenant.slug}/painel/"
    assert "Escolha a sua estação" in answer.content.decode()
    assert browser.get(f"/t/{tenant.slug}/gestao/").status_code == 403


def test_a_manager_added_by_the_admin_opens_the_dashboard_and_the_admin(dave_client, tenant):
    dave_client.post(add_url(tenant), new_person(role=Role.MANAGER))
    rita = get_user_model().objects.get(username="rita")
    assert rita.is_staff
    browser, _ = log_in("rita", PASSWORD)
    assert browser.get(f"/t/{tenant.slug}/gestao/").status_code == 200
    assert browser.get("/admin/").status_code == 200


def test_the_password_typed_goes_through_djangos_validators(dave_client, tenant):
    for password, error in (("curta", "muito curta"), ("albuquerque1", "parecida")):
        data = new_person(last_name="Albuquerque", new_password1=password, new_password2=password)
        response = dave_client.post(add_url(tenant), data)
        assert response.status_code == 400
        assert error in response.content.decode()
    mismatch = new_person(new_password2=PASSWORD + "x")
    assert dave_client.post(add_url(tenant), mismatch).status_code == 400
    assert not get_user_model().objects.filter(username="rita").exists()
    assert audited(tenant, AuditAction.MEMBER_ADDED) == []


def test_a_login_taken_anywhere_in_any_case_is_refused_and_never_joined(
    dave_client, tenant, charlie
):
    response = dave_client.post(add_url(tenant), new_person(username="Charlie"))
    assert response.status_code == 400
    assert "Este login já está em uso" in response.content.decode()
    assert not Membership.objects.filter(user=charlie, tenant=tenant).exists()
    assert get_user_model().objects.filter(username__iexact="charlie").count() == 1


def test_the_one_time_link_sets_the_password_once(dave_client, tenant):
    response = dave_client.post(add_url(tenant), new_person(password_mode="link"))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    link = re.search(r'value="(http://testserver/accounts/reset/[^"]+)"', page)[1]
    rita = get_user_model().objects.get(username="rita")
    assert not rita.has_usable_password()
    entry = audited(tenant, AuditAction.MEMBER_PASSWORD_LINK)[0]
    assert link.split("/")[-2] not in str(entry.data)  # the token is kept nowhere

    stranger = Client()
    form = stranger.get(link, follow=True)
    assert "Escolha a sua senha" in form.content.decode()
    assert "<strong>rita</strong>" in form.content.decode()  # the login to use with it
    saved = stranger.post(
        form.redirect_chain[-1][0],
        {"new_password1": PASSWORD, "new_password2": PASSWORD},
        follow=True,
    )
    assert "Senha salva" in saved.content.decode()
    _, answer = log_in("rita", PASSWORD)
    assert answer.redirect_chain[-1][0] == f"/t/{tenant.slug}/painel/"

    again = Client().get(link, follow=True)
    assert "Este link não funciona mais" in again.content.decode()


def test_the_admin_changes_a_persons_role_and_password_and_each_is_audited(
    dave_client, tenant, alice
):
    url = member_url(tenant, alice)
    data = {"action": "save", "first_name": "Alice", "last_name": "Prado", "role": Role.MANAGER}
    assert dave_client.post(url, data).status_code == 302
    alice.refresh_from_db()
    assert (alice.last_name, alice.is_staff) == ("Prado", True)
    assert Membership.objects.get(user=alice).role == Role.MANAGER
    [changed] = audited(tenant, AuditAction.MEMBER_CHANGED)
    assert changed.data["changed"] == {
        "first_name": ["", "Alice"],
        "last_name": ["", "Prado"],
        "role": ["operator", "manager"],
    }

    alices_session = Client()
    alices_session.force_login(alice)
    password = {"action": "password", "new_password1": PASSWORD, "new_password2": PASSWORD}
    assert dave_client.post(url, password).status_code == 302
    assert len(audited(tenant, AuditAction.MEMBER_PASSWORD_SET)) == 1
    # Her open session was opened with the old password: it ends.
    assert alices_session.get(f"/t/{tenant.slug}/painel/").status_code == 302
    assert log_in("alice", PASSWORD)[0].get(f"/t/{tenant.slug}/gestao/").status_code == 200


def test_deactivation_blocks_the_login_and_ends_the_open_session(dave_client, tenant, alice):
    alices_session = Client()
    alices_session.force_login(alice)
    assert alices_session.get(f"/t/{tenant.slug}/painel/").status_code == 200

    response = dave_client.post(member_url(tenant, alice), {"action": "deactivate"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_active
    assert Membership.objects.filter(user=alice, tenant=tenant).exists()  # still listed
    assert len(audited(tenant, AuditAction.MEMBER_DEACTIVATED)) == 1
    assert alices_session.get(f"/t/{tenant.slug}/painel/")["Location"].startswith(
        "/accounts/login/"
    )
    assert log_in("alice", "pw-alice")[1].redirect_chain == []
    assert "Acesso desativado" in dave_client.get(team_url(tenant)).content.decode()
    # No link for an inactive account: it would open a door the deactivation closed.
    assert dave_client.post(member_url(tenant, alice), {"action": "link"}).status_code == 400

    dave_client.post(member_url(tenant, alice), {"action": "reactivate"})
    assert log_in("alice", "pw-alice")[1].redirect_chain[-1][0] == f"/t/{tenant.slug}/painel/"
    assert len(audited(tenant, AuditAction.MEMBER_REACTIVATED)) == 1


def test_the_team_shows_only_this_studios_people_and_others_are_404(
    dave_client, tenant, other_tenant, alice, bob, charlie
):
    page = dave_client.get(team_url(tenant)).content.decode()
    assert "alice" in page and "bob" in page and "dave" in page
    assert "charlie" not in page
    theirs = Membership.objects.get(user=charlie)
    for url in (team_url(tenant, theirs.pk), team_url(other_tenant), add_url(other_tenant)):
        assert dave_client.get(url).status_code == 404, url
    for action in ("save", "password", "link", "deactivate", "reactivate"):
        data = {"action": action, "first_name": "X", "role": Role.ADMIN}
        assert dave_client.post(team_url(tenant, theirs.pk), data).status_code == 404
    charlie.refresh_from_db()
    assert charlie.is_active and charlie.first_name == ""
    assert Membership.objects.get(user=charlie).role == Role.MANAGER


def test_a_person_shared_with_another_studio_is_never_edited_only_removed_from_this_team(
    dave_client, tenant, other_tenant, erin
):
    url = member_url(tenant, erin)
    page = dave_client.get(url).content.decode()
    assert "também trabalha em outra empresa" in page
    assert other_tenant.name not in page and other_tenant.name not in (
        dave_client.get(team_url(tenant)).content.decode()
    )
    for data in (
        {"action": "save", "first_name": "Outra", "last_name": "", "role": Role.MANAGER},
        {"action": "password", "new_password1": PASSWORD, "new_password2": PASSWORD},
        {"action": "link"},
        {"action": "reactivate"},
    ):
        response = dave_client.post(url, data)
        assert response.status_code == 400, data
        assert "também trabalha em outra empresa" in response.content.decode()
    erin.refresh_from_db()
    assert erin.first_name == "Erin" and erin.check_password("pw-erin") and erin.is_active
    assert Membership.objects.get(user=erin, tenant=tenant).role == Role.OPERATOR

    assert dave_client.post(url, {"action": "deactivate"}).status_code == 302
    erin.refresh_from_db()
    assert erin.is_active  # her other studio still counts on her
    assert list(Membership.objects.filter(user=erin).values_list("tenant", flat=True)) == [
        other_tenant.pk
    ]
    [entry] = audited(tenant, AuditAction.MEMBER_REMOVED)
    assert entry.data == {"username": "erin", "role": "operator"}


def test_the_operations_themselves_refuse_a_shared_account_whoever_calls_them(tenant, dave, erin):
    # Views, admin actions and commands all go through tenants/team.py: the rule holds there.
    membership = team.team_of(tenant).get(user=erin)
    calls = [
        lambda: team.change_member(
            membership, by=dave, first_name="X", last_name="", role=Role.ADMIN
        ),
        lambda: team.set_password(membership, by=dave, password=PASSWORD),
        lambda: team.password_link(membership, by=dave),
        lambda: team.reactivate(membership, by=dave),
    ]
    for call in calls:
        with pytest.raises(DomainError, match="outra empresa"):
            call()
    erin.refresh_from_db()
    assert erin.first_name == "Erin" and erin.check_password("pw-erin")
    assert not AuditLog.objects.filter(action__startswith="member_").exists()


def test_the_admin_cannot_change_or_deactivate_himself_nor_a_platform_account(
    dave_client, tenant, dave, admin_user
):
    Membership.objects.create(user=admin_user, tenant=tenant, role=Role.ADMIN)
    for user in (dave, admin_user):
        for data in (
            {"action": "deactivate"},
            {"action": "save", "first_name": "X", "role": "operator"},
        ):
            assert dave_client.post(member_url(tenant, user), data).status_code == 400
        user.refresh_from_db()
        assert user.is_active and user.first_name != "X"
    assert Membership.objects.get(user=dave).role == Role.ADMIN


def test_an_operator_and_a_manager_can_do_none_of_it(client, tenant, alice, bob, dave):
    for who in (alice, bob):
        client.force_login(who)
        assert client.get(team_url(tenant)).status_code == 403
        assert client.get(add_url(tenant)).status_code == 403
        assert client.post(add_url(tenant), new_person()).status_code == 403
        target = member_url(tenant, alice if who == bob else bob)
        for action in ("save", "password", "link", "deactivate", "reactivate"):
            data = {"action": action, "first_name": "X", "role": Role.ADMIN}
            assert client.post(target, data).status_code == 403
    assert not get_user_model().objects.filter(username="rita").exists()
    assert not AuditLog.objects.filter(action__startswith="member_").exists()
    bob.refresh_from_db()
    assert bob.is_active and Membership.objects.get(user=bob).role == Role.MANAGER


def test_an_admin_may_grant_the_admin_role(dave_client, tenant):
    dave_client.post(add_url(tenant), new_person(role=Role.ADMIN))
    rita = get_user_model().objects.get(username="rita")
    assert Membership.objects.get(user=rita).role == Role.ADMIN and rita.is_staff
    assert not rita.is_superuser
