from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from equipment.models import Equipment
from messaging.models import RemoteJoin
from tenants.models import Membership, Tenant
from tickets.models import Extra, Service


def test_seed_demo_builds_the_demo_studio_and_can_run_twice(db, client):
    call_command("seed_demo")
    logo = Tenant.objects.get(slug="demo").logo.name
    Extra.objects.filter(name="Toalha").update(stock=3)  # some were sold
    RemoteJoin.objects.filter(tenant__slug="demo").update(per_phone_per_day=1)  # in admin
    call_command("seed_demo")
    tenant = Tenant.objects.get(slug="demo")
    assert tenant.name == "Studio Demo"
    # Branded: its colours pass the admin's contrast check, its logo drawn once.
    assert (tenant.primary_colour, tenant.accent_colour) == ("#1b4332", "#ffd166")
    tenant.full_clean()
    assert tenant.logo.name == logo and logo.startswith("logos/studio-demo-")
    assert (tenant.logo_width, tenant.logo_height) == (720, 200)
    assert sorted(Service.objects.for_tenant(tenant).values_list("name", flat=True)) == [
        "Bota de compressão",
        "Crioterapia",
        "Massagem",
        "Sauna infravermelha",
    ]
    assert Extra.objects.get(name="Toalha").stock == 3
    # Devices as studios run them: a cryo session is 3 min at most, then 5 min of cool-down.
    cryo = Service.objects.get(tenant=tenant, name="Crioterapia")
    assert (cryo.duration_minutes, cryo.hard_maximum, cryo.cooldown_minutes) == (3, True, 5)
    boots = Service.objects.get(tenant=tenant, name="Bota de compressão")
    assert (boots.duration_minutes, boots.hard_maximum, boots.cooldown_minutes) == (30, False, 0)
    assert set(
        Equipment.objects.filter(shows_timer_on_display=True).values_list("name", flat=True)
    ) == {"Criocâmara 1", "Criocâmara 2"}
    # 6 service devices, the kiosk, the TV and the (file) printer.
    assert Equipment.objects.for_tenant(tenant).count() == 9
    user = get_user_model().objects.get(username="operator")
    assert user.check_password("demo-operator")
    assert Membership.objects.get(user=user).role == "operator"
    assert Membership.objects.count() == 3
    # Customers may join from their phone, as the README's table says; admin's limits kept.
    assert RemoteJoin.objects.get(tenant=tenant).per_phone_per_day == 1
    page = client.get(reverse("join", args=["demo"]))
    assert page.status_code == 200 and "Crioterapia" in page.content.decode()
