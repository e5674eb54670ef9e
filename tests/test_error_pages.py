"""What a customer sees when something is wrong, in production mode (DEBUG off): pt-BR pages
for 400, 403, 404 and 500 with the look of the 503 page, and the kiosk's own error screen at
the kiosk."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from equipment.models import Kind
from tests.conftest import make_device, queued_ticket
from tests.test_kiosk import url
from totem.models import PairingCode


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def text(response) -> str:
    return response.content.decode()


def test_a_qr_link_to_no_ticket_shows_the_portuguese_page_with_404(client, tenant, cryo):
    ticket = queued_ticket(tenant, [cryo])
    assert client.get(f"/t/{tenant.slug}/senha/{ticket.token}/").status_code == 200
    # A token of the right shape that no ticket has (expired and purged, or mistyped), one of
    # the wrong shape, and a studio that does not exist.
    for path in [
        f"/t/{tenant.slug}/senha/{'A' * 32}/",
        f"/t/{tenant.slug}/senha/abc/",
        f"/t/no-such-studio/senha/{ticket.token}/",
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        page = text(response)
        assert "<h1>Página não encontrada</h1>" in page, path
        assert "QR code de uma senha, ela pode ter expirado" in page
        assert '<html lang="pt-br">' in page
        assert "Not Found" not in page


def test_a_form_refused_by_the_csrf_check_shows_the_portuguese_page_with_403(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    page = text(response)
    assert "<h1>Esta página expirou</h1>" in page
    assert "Volte, recarregue a página e tente de novo." in page
    assert "CSRF" not in page  # the reason is for developers, shown only with DEBUG on
    assert "Forbidden" not in page


def test_at_the_kiosk_a_refused_form_shows_the_kiosks_own_screen_that_goes_back_by_itself(
    tenant, cryo
):
    make_device(tenant, "Crio 1", [cryo])
    code = PairingCode.objects.create(
        tenant=tenant, equipment=make_device(tenant, "Totem 1", kind=Kind.KIOSK)
    )
    kiosk = Client(enforce_csrf_checks=True)
    kiosk.get(url(tenant, "kiosk_pair"))
    token = kiosk.cookies["csrftoken"].value
    paired = kiosk.post(
        url(tenant, "kiosk_pair"), {"code": code.code, "csrfmiddlewaretoken": token}
    )
    assert paired.status_code == 302

    response = kiosk.post(url(tenant, "kiosk_start"), {"csrfmiddlewaretoken": "stale" * 8})
    assert response.status_code == 403
    assert [t.name for t in response.templates][0] == "kiosk/error.html"
    welcome = reverse("kiosk_welcome", args=[tenant.slug])
    assert f';url={welcome}"' in text(response)
    # An htmx tap swaps nothing on an error status: the whole screen goes to the error screen.
    tapped = kiosk.post(url(tenant, "kiosk_start"), headers={"HX-Request": "true"})
    assert tapped["HX-Redirect"] == reverse("kiosk_error", args=[tenant.slug])


def test_a_member_below_the_role_gets_the_portuguese_page_with_403(client, tenant, alice):
    client.force_login(alice)  # an operator, at the manager's dashboard
    response = client.get(reverse("ops_dashboard", args=[tenant.slug]))
    assert response.status_code == 403
    page = text(response)
    assert "<h1>Acesso negado</h1>" in page
    assert "Forbidden" not in page


def test_a_forced_500_shows_the_portuguese_page(tenant, cryo, monkeypatch):
    ticket = queued_ticket(tenant, [cryo])

    def broken(line):
        raise RuntimeError("a bug in the status page")

    monkeypatch.setattr("totem.views.place_of", broken)
    client = Client(raise_request_exception=False)
    response = client.get(f"/t/{tenant.slug}/senha/{ticket.token}/")
    assert response.status_code == 500
    page = text(response)
    assert "<h1>Desculpe, algo deu errado</h1>" in page
    assert "Se você já tinha pago, fale com a recepção." in page
    assert "Server Error" not in page and "RuntimeError" not in page


def test_the_500_page_needs_no_database_and_no_request():
    """No `db` fixture: pytest-django refuses any query here, as a database that is down
    would. Django's server_error renders the template with an empty context."""
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert "<h1>Desculpe, algo deu errado</h1>" in text(response)
    assert "Desculpe, algo deu errado" in render_to_string("500.html")


def test_malformed_input_gets_the_portuguese_page_with_400(db):
    response = Client().get("/accounts/login/", {"next": "/\x00"})
    assert response.status_code == 400
    assert "<h1>Pedido inválido</h1>" in text(response)


def test_every_error_page_has_the_look_of_the_503_page():
    pages = ["400.html", "403.html", "403_csrf.html", "404.html", "500.html", "503.html"]
    for name in pages:
        html = render_to_string(name)
        assert "background: #0f172a" in html, name
        assert html.count("<h1>") == 1, name
    assert '<meta http-equiv="refresh" content="5">' in render_to_string("503.html")
