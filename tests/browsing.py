"""A browser talking to a real Daphne, and the steps a kiosk, an operator and a manager take
over HTTP: shared by the tests that drive the whole stack (outages, attacks)."""

from __future__ import annotations

import re
import time

import requests

from equipment.models import Kind
from payments.models import PaymentSession, SessionStatus
from tests import daphne_server
from tests.conftest import make_device
from totem.models import PairingCode

# The password of the users these steps log in (hashed as in production: Daphne knows no
# test hasher).
PASSWORD = "stack-pw-1"


class Browser(requests.Session):
    """A browser talking to Daphne: every answer within `bound` seconds (or requests raises
    ReadTimeout), never a server error, CSRF token sent as the pages' htmx does."""

    def __init__(self, daphne: daphne_server.DaphneProcess, bound: float = 10.0) -> None:
        super().__init__()
        self.base = f"http://{daphne.address}"
        self.bound = bound

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.bound)
        headers = kwargs.pop("headers", None) or {}
        headers.setdefault("X-CSRFToken", self.cookies.get("csrftoken", ""))
        began = time.monotonic()
        try:
            response = super().request(method, self.base + url, headers=headers, **kwargs)
        except requests.Timeout as error:
            raise AssertionError(f"{method} {url}: no answer in {self.bound} s") from error
        took = time.monotonic() - began
        assert response.status_code < 500, f"{method} {url}: HTTP {response.status_code}"
        assert took < self.bound, f"{method} {url} took {took:.1f} s"
        return response


def pair_kiosk(daphne, tenant, bound: float = 10.0) -> Browser:
    kiosk = Browser(daphne, bound)
    device = make_device(tenant, "Totem 1", kind=Kind.KIOSK)
    code = PairingCode.objects.create(tenant=tenant, equipment=device)
    page = f"/t/{tenant.slug}/totem/parear/"
    kiosk.get(page)
    paired = kiosk.post(page, data={"code": code.code}, allow_redirects=False)
    assert paired.status_code == 302, paired.text
    assert "totem_kiosk" in kiosk.cookies
    return kiosk


def buy(
    kiosk: Browser, tenant, service, method: str, customer: str, **identity: str
) -> PaymentSession:
    """A purchase at the kiosk up to its payment screen; `identity` adds identification fields
    (customer_cpf, customer_phone)."""
    root = f"/t/{tenant.slug}/totem"
    kiosk.post(root + "/comecar/")
    kiosk.post(root + "/servicos/", data={"toggle": service.pk})
    kiosk.post(root + "/extras/", data={"next": "1"})
    form = {"customer_name": customer, "priority": "", "consent": "on", **identity}
    kiosk.post(root + "/identificacao/", data=form)
    summary = kiosk.get(root + "/resumo/")
    key = re.search(r'name="key" value="([^"]+)"', summary.text)
    assert key, summary.text
    paying = kiosk.post(root + "/resumo/", data={"method": method, "key": key[1]})
    assert paying.url.endswith("/pagamento/"), paying.url
    session = PaymentSession.objects.select_related("ticket").get(
        ticket__tenant=tenant, ticket__idempotency_key=key[1]
    )
    assert session.method == method and session.status == SessionStatus.PENDING
    # Cash: the number to tell the front desk; PIX: the BR Code to pay.
    assert (session.ticket.number if method == "cash" else session.qr_code) in paying.text
    return session


def log_in(daphne, tenant, username: str = "alice", bound: float = 10.0) -> Browser:
    operator = Browser(daphne, bound)
    operator.get("/accounts/login/")
    answer = operator.post("/accounts/login/", data={"username": username, "password": PASSWORD})
    assert not answer.url.endswith("/accounts/login/"), "the login was refused"
    assert operator.get(f"/t/{tenant.slug}/painel/").url.endswith("/painel/")
    return operator


def choose_station(operator: Browser, tenant, cabin) -> None:
    operator.post(f"/t/{tenant.slug}/painel/estacao/", data={"station": cabin.pk})


def call_next(operator: Browser, tenant, service) -> None:
    operator.post(f"/t/{tenant.slug}/painel/servico/{service.pk}/chamar/")


def log_in_to_admin(daphne, manager, bound: float = 10.0) -> Browser:
    admin = Browser(daphne, bound)
    admin.get("/admin/login/")
    form = {"username": manager.username, "password": PASSWORD, "next": "/admin/"}
    answer = admin.post("/admin/login/", data=form)
    assert answer.url.endswith("/admin/"), "the admin login was refused"
    return admin
