"""Where a login lands and what the staff header links to, by role: alice (operator) works
at a station, bob (manager) runs the dashboard, dave (administrator) also manages the team."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tenants.models import Membership, Role
from tests.conftest import make_device

NAV = re.compile(r'<nav class="topbar-nav".*?</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')
LOGOUT = re.compile(r'<form class="topbar-user" method="post" action="/accounts/logout/">')


def header_links(page: str) -> dict[str, str]:
    """The header's links, label → href; {} when the page has no navigation."""
    found = NAV.search(page)
    return {label: href for href, label in LINK.findall(found[0])} if found else {}


def logged_in(username: str, password: str) -> tuple[Client, str]:
    """A browser through the login form, and where it landed."""
    browser = Client()
    answer = browser.post(
        "/accounts/login/", {"username": username, "password": password}, follow=True
    )
    assert answer.redirect_chain, "the login was refused"
    return browser, answer.redirect_chain[-1][0]


def test_a_manager_lands_on_the_dashboard_and_an_operator_on_the_station_picker(
    tenant, alice, bob, dave
):
    assert logged_in("alice", "pw-alice")[1] == f"/t/{tenant.slug}/painel/"
    assert logged_in("bob", "pw-bob")[1] == f"/t/{tenant.slug}/gestao/"
    assert logged_in("dave", "pw-dave")[1] == f"/t/{tenant.slug}/gestao/"


def test_a_login_with_a_next_page_still_goes_there(tenant, bob):
    browser = Client()
    answer = browser.post(
        f"/accounts/login/?next=/t/{tenant.slug}/painel/",
        {"username": "bob", "password": "pw-bob", "next": f"/t/{tenant.slug}/painel/"},
    )
    assert answer["Location"] == f"/t/{tenant.slug}/painel/"


def test_a_member_of_several_studios_picks_one_and_lands_by_their_role_there(
    client, tenant, other_tenant, alice
):
    Membership.objects.create(user=alice, tenant=other_tenant, role=Role.MANAGER)
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert f'href="/t/{tenant.slug}/painel/"' in page
    assert f'href="/t/{other_tenant.slug}/gestao/"' in page
    assert header_links(page) == {}  # no studio chosen yet: nothing to link to
    assert LOGOUT.search(page)


@pytest.fixture
def pages(tenant, cryo):
    """Every staff page of the studio, by name."""
    station = make_device(tenant, "Crio 1", [cryo])
    slug = tenant.slug

    def visit(client: Client) -> dict[str, str]:
        found = {"stations": client.get(f"/t/{slug}/painel/")}
        client.post(f"/t/{slug}/painel/estacao/", {"station": station.pk})
        found["panel"] = client.get(f"/t/{slug}/painel/")
        for name, url in (
            ("dashboard", f"/t/{slug}/gestao/"),
            ("lgpd", f"/t/{slug}/gestao/lgpd/"),
            ("team", f"/t/{slug}/gestao/equipe/"),
            ("add", f"/t/{slug}/gestao/equipe/nova-pessoa/"),
        ):
            found[name] = client.get(url)
        return {
            name: response.content.decode()
            for name, response in found.items()
            if response.status_code == 200
        }

    return visit


def expected_links(slug: str, *labels: str) -> dict[str, str]:
    every = {
        "Painel": f"/t/{slug}/painel/",
        "Gestão": f"/t/{slug}/gestao/",
        "Exportações": f"/t/{slug}/gestao/#exportar",
        "LGPD": f"/t/{slug}/gestao/lgpd/",
        "Equipe": f"/t/{slug}/gestao/equipe/",
        "Admin": "/admin/",
    }
    return {label: every[label] for label in labels}


@pytest.mark.parametrize(
    ("who", "opens", "labels"),
    [
        ("alice", {"stations", "panel"}, ["Painel"]),
        (
            "bob",
            {"stations", "panel", "dashboard", "lgpd"},
            ["Painel", "Gestão", "Exportações", "LGPD", "Admin"],
        ),
        (
            "dave",
            {"stations", "panel", "dashboard", "lgpd", "team", "add"},
            ["Painel", "Gestão", "Exportações", "LGPD", "Equipe", "Admin"],
        ),
    ],
)
def test_every_staff_page_links_to_what_the_role_may_open_and_logs_out_by_post(
    request, client, tenant, pages, who, opens, labels
):
    client.force_login(request.getfixturevalue(who))
    seen = pages(client)
    assert set(seen) == opens
    for name, page in seen.items():
        assert header_links(page) == expected_links(tenant.slug, *labels), name
        assert LOGOUT.search(page), name
        assert page.count('aria-current="page"') <= 1, name
    # Every link opens for this role (the export anchor is the dashboard's section).
    for href in expected_links(tenant.slug, *labels).values():
        assert client.get(href.split("#")[0]).status_code == 200, href
    if "Exportações" in labels:
        assert 'id="exportar"' in seen["dashboard"]


def test_the_header_marks_the_page_it_is_on(client, tenant, dave, pages):
    client.force_login(dave)
    seen = pages(client)
    for name, label in (
        ("panel", "Painel"),
        ("dashboard", "Gestão"),
        ("lgpd", "LGPD"),
        ("team", "Equipe"),
    ):
        current = re.search(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', seen[name])
        assert current and current[1] == label, name


def test_log_out_is_a_post_and_a_get_does_not_log_out(client, alice, tenant):
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get(f"/t/{tenant.slug}/painel/").status_code == 200
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert client.get(f"/t/{tenant.slug}/painel/").status_code == 302
