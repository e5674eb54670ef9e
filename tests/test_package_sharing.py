"""A shareable package: its owner names other CPFs at the counter, and those people's
sessions at the kiosk may come from it. Named by a manager (audited); a package that is not
shareable is never used by anyone else; LGPD export and erasure cover the named CPF."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.urls import reverse

from ops import retention
from tenants.models import AuditAction, AuditLog
from tests.conftest import make_ticket
from tests.test_customers import CPF, customer_of, make_package
from tickets import credits
from tickets.models import CustomerPackage, PackageSharing

PARTNER = "11144477735"


@pytest.fixture
def shared(tenant, cryo, bob) -> CustomerPackage:
    """Maria's shareable package of 10 cryotherapy sessions."""
    package = make_package(tenant, [cryo], sessions=10, shareable=True)
    return credits.sell_at_counter(tenant, customer_of(tenant), package, user=bob)


def test_a_named_cpf_takes_a_session_of_the_owners_package(tenant, cryo, bob, shared):
    credits.share(tenant, shared.pk, "111.444.777-35", user=bob)
    ticket = make_ticket(tenant, [cryo], cpf=PARTNER, use_sessions=[cryo.pk])
    assert ticket.total == 0 and ticket.lines.get().credit.customer_package == shared
    owner = shared.customer
    assert credits.sessions_left(owner, cryo.pk) == 9
    assert credits.sessions_left(ticket.customer, cryo.pk) == 9  # the same package
    entry = AuditLog.objects.get(action=AuditAction.PACKAGE_SHARED)
    assert entry.user == bob and PARTNER not in str(entry.data)  # masked


def test_a_cpf_nobody_named_cannot_use_it(tenant, cryo, shared):
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=PARTNER, use_sessions=[cryo.pk])


def test_a_package_that_is_not_shareable_is_never_shared(tenant, cryo, bob):
    sold = credits.sell_at_counter(
        tenant, customer_of(tenant), make_package(tenant, [cryo]), user=bob
    )
    with pytest.raises(credits.CreditError, match="não é compartilhável"):
        credits.share(tenant, sold.pk, PARTNER, user=bob)
    # Named before the studio made it not shareable: no longer used.
    PackageSharing.objects.create(tenant=tenant, customer_package=sold, cpf=PARTNER)
    with pytest.raises(ValidationError):
        make_ticket(tenant, [cryo], cpf=PARTNER, use_sessions=[cryo.pk])


def test_only_a_manager_shares_and_only_a_valid_cpf(tenant, alice, bob, shared):
    with pytest.raises(credits.CreditError):
        credits.share(tenant, shared.pk, PARTNER, user=alice)
    with pytest.raises(credits.CreditError, match="CPF inválido"):
        credits.share(tenant, shared.pk, "123", user=bob)
    with pytest.raises(credits.CreditError, match="próprio dono"):
        credits.share(tenant, shared.pk, CPF, user=bob)
    assert not PackageSharing.objects.exists()


def test_an_outsider_cannot_share_another_studios_package(tenant, charlie, other_tenant, shared):
    with pytest.raises(credits.CreditError):
        credits.share(tenant, shared.pk, PARTNER, user=charlie)
    with pytest.raises(credits.CreditError):
        credits.share(other_tenant, shared.pk, PARTNER, user=charlie)


def test_a_manager_shares_from_the_admin(client, tenant, bob, shared):
    client.force_login(bob)
    url = reverse("admin:tickets_customerpackage_changelist")
    form = {"action": "share_package", ACTION_CHECKBOX_NAME: [shared.pk]}
    assert "Compartilhar o pacote" in client.post(url, form).content.decode()
    assert client.post(url, {**form, "apply": "1", "cpf": "111.444.777-35"}).status_code == 302
    assert PackageSharing.objects.get().cpf == PARTNER


def test_export_and_erasure_cover_the_named_cpf(tenant, bob, shared):
    credits.share(tenant, shared.pk, PARTNER, user=bob)
    exported = retention.export_customer(tenant, PARTNER)
    assert [p["package"] for p in exported["packages_shared_with_you"]] == ["10 sessões"]
    retention.erase_customer(tenant, PARTNER)
    assert not PackageSharing.objects.exists()
    assert CustomerPackage.objects.get() == shared  # the owner's package stays


def test_erasing_the_owner_drops_the_names_with_the_closed_package(tenant, bob, shared):
    credits.share(tenant, shared.pk, PARTNER, user=bob)
    retention.erase_customer(tenant, CPF, close_packages=True)
    assert not PackageSharing.objects.exists()
