from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied

from tenants.access import has_role, role_in, tenants_for
from tenants.models import OpeningHours, Role


def at(tenant, weekday: int, hour: int, minute: int = 0):
    # 2026-11-23 is a Monday.
    day = datetime.date(2026, 11, 23) + datetime.timedelta(days=weekday)
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=tenant.tzinfo)


def test_a_tenant_without_hours_is_always_open(tenant):
    assert tenant.is_open(at(tenant, 6, 3))


def test_opening_hours_are_read_in_the_tenants_local_time(tenant):
    OpeningHours.objects.create(
        tenant=tenant, weekday=0, opens=datetime.time(8), closes=datetime.time(12)
    )
    OpeningHours.objects.create(
        tenant=tenant, weekday=0, opens=datetime.time(14), closes=datetime.time(20)
    )
    assert tenant.is_open(at(tenant, 0, 9))
    assert not tenant.is_open(at(tenant, 0, 13))
    assert tenant.is_open(at(tenant, 0, 19, 59))
    assert not tenant.is_open(at(tenant, 0, 20))
    assert not tenant.is_open(at(tenant, 1, 9))  # Tuesday has no hours
    # 9:00 in São Paulo is 12:00 UTC.
    utc_noon = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)
    assert tenant.is_open(utc_noon)


def test_roles_rank_admin_over_manager_over_operator(tenant, alice, bob, charlie):
    assert role_in(alice, tenant) == Role.OPERATOR
    assert has_role(bob, tenant, Role.OPERATOR) and has_role(bob, tenant, Role.MANAGER)
    assert not has_role(alice, tenant, Role.MANAGER)
    assert role_in(charlie, tenant) is None
    assert list(tenants_for(alice)) == [tenant]
    assert list(tenants_for(alice, Role.MANAGER)) == []


def test_a_user_may_belong_to_several_tenants(tenant, other_tenant, alice):
    from tenants.models import Membership

    Membership.objects.create(user=alice, tenant=other_tenant, role=Role.MANAGER)
    assert set(tenants_for(alice)) == {tenant, other_tenant}
    assert list(tenants_for(alice, Role.MANAGER)) == [other_tenant]


def test_soft_deleted_tenants_disappear_from_access(tenant, alice):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=tenant.pk).soft_delete()
    assert list(tenants_for(alice)) == []


def test_a_staff_screen_reads_its_tenant_and_the_role_in_one_query(
    tenant, other_tenant, alice, bob, charlie, django_assert_num_queries
):
    """tenant_member_required: the tenant by slug with the user's role in the same read;
    the role is then known for the rest of the request (role_in asks no more)."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import Http404, HttpResponse
    from django.test import RequestFactory

    from tenants.access import tenant_member_required
    from tenants.models import Tenant

    seen = {}

    @tenant_member_required(Role.MANAGER)
    def screen(request, slug):
        seen["role"] = role_in(request.user, request.tenant)
        return HttpResponse(request.role)

    def ask(user, slug=tenant.slug):
        request = RequestFactory().get("/")
        request.user = user
        return screen(request, slug)

    with django_assert_num_queries(1):
        assert ask(bob).content == b"manager"
    assert seen["role"] == Role.MANAGER
    for outsider, slug in ((charlie, tenant.slug), (bob, other_tenant.slug), (bob, "none")):
        with pytest.raises(Http404):
            ask(outsider, slug)
    with pytest.raises(PermissionDenied):
        ask(alice)  # an operator, below the screen's role
    assert ask(AnonymousUser()).status_code == 302  # to the login page
    Tenant.objects.filter(pk=tenant.pk).update(is_active=False)
    with pytest.raises(Http404):
        ask(bob)
