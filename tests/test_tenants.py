from __future__ import annotations

import datetime

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
