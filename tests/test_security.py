"""Web security: login throttling, CSRF, what a hostile visitor can and cannot do."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse


def login(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_login_is_refused_after_five_failures_even_with_the_right_password(alice):
    client = Client()
    for _ in range(5):
        response = login(client, "alice", "wrong")
        assert response.status_code == 200
    response = login(client, "alice", "pw-alice")
    assert "Muitas tentativas" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_logs_in(alice):
    client = Client()
    for _ in range(4):
        login(client, "alice", "wrong")
    response = login(client, "alice", "pw-alice")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_the_admin_login_is_throttled_too(bob):
    client = Client()
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": "bob", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "bob", "password": "pw-bob"})
    assert "Muitas tentativas" in response.content.decode()


def test_the_production_settings_pass_djangos_deployment_checks():
    import os
    import secrets
    import subprocess
    import sys

    from django.conf import settings

    # Browser test modules set DJANGO_ALLOW_ASYNC_UNSAFE in this process; production does not.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "totem.example.com",
        "EMAIL_URL": "smtp+tls://totem:pw@smtp.example.com:587",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"DEBUG": "false"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_provider_tokens_and_signing_secrets_are_encrypted_at_rest(tenant):
    from django.db import connection

    from payments.models import PaymentSettings
    from tenants.models import WebhookEndpoint

    PaymentSettings.objects.update_or_create(
        tenant=tenant,
        defaults={
            "mercadopago_access_token": "APP_USR-123-secret-token",
            "mercadopago_webhook_secret": "whsec-456",
        },
    )
    WebhookEndpoint.objects.create(
        tenant=tenant, target_url="https://example.com/hook", secret="sig-789"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT mercadopago_access_token, mercadopago_webhook_secret "
            "FROM payments_paymentsettings"
        )
        stored = list(cursor.fetchone())
        cursor.execute("SELECT secret FROM tenants_webhookendpoint")
        stored += list(cursor.fetchone())
    assert all(value.startswith("fernet:") for value in stored)
    assert not any(plain in "".join(stored) for plain in ("secret-token", "whsec", "sig-789"))
    settings_row = PaymentSettings.objects.get(tenant=tenant)
    assert settings_row.mercadopago_access_token == "APP_USR-123-secret-token"
    assert WebhookEndpoint.objects.get().secret == "sig-789"


def test_a_second_key_decrypts_what_the_first_wrote_so_keys_can_rotate(settings):
    from cryptography.fernet import Fernet

    from tenants import crypto

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    stored = crypto.encrypt("token")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(stored) == "token"
    assert crypto.decrypt("written before encryption") == "written before encryption"


def test_every_page_has_a_content_security_policy_and_no_inline_script(
    admin_client, tenant, cryo, towel
):
    import re

    from django.urls import reverse

    from equipment.models import Kind
    from tests.conftest import make_device
    from tests.test_isolation import http_routes
    from totem.models import PairingCode

    # The same browser is also a paired kiosk (mid-purchase) and TV, so the public screens
    # answer with their pages instead of redirecting to pairing.
    make_device(tenant, "Crio 1", [cryo])
    for kind in (Kind.KIOSK, Kind.DISPLAY):
        code = PairingCode.objects.create(
            tenant=tenant, equipment=make_device(tenant, kind, kind=kind)
        )
        paired = admin_client.post(reverse("kiosk_pair", args=[tenant.slug]), {"code": code.code})
        assert paired.status_code == 302

    def mid_purchase() -> None:  # the welcome and leave screens end a purchase
        admin_client.post(reverse("kiosk_start", args=[tenant.slug]))
        admin_client.post(reverse("kiosk_services", args=[tenant.slug]), {"toggle": cryo.pk})

    checked = set()
    for route, name in http_routes():
        if "<" in route.replace("<slug:slug>", ""):
            continue  # pages of one object; their templates are the same as their lists'
        if name.startswith("kiosk_"):
            mid_purchase()
        response = admin_client.get("/" + route.replace("<slug:slug>", tenant.slug))
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        checked.add(name)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-eval'" not in policy, name
        html = response.content.decode()
        inline = [
            tag
            for tag in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
            if "application/json" not in tag and "nonce=" not in tag
        ]
        assert inline == [], (name, inline)
        assert not re.search(r"\son[a-z]+=[\"']", html), f"{name}: inline event handler"
    screens = {"kiosk_welcome", "kiosk_services", "kiosk_extras", "display", "panel"}
    assert screens <= checked, f"not checked: {screens - checked}"


@pytest.mark.redis
def test_a_throttle_counter_created_without_expiry_gets_its_window_back():
    # Redis's INCR recreates an expired key without a TTL; the counter must not live forever
    # (the soak found a kiosk locked out by exactly this).
    from django.core.cache import cache

    from tenants import throttle

    key = throttle._key("kiosk", "42")
    cache.set(key, 0, timeout=None)  # what INCR leaves behind: a counter without expiry
    assert throttle.hit("kiosk", "42", window=60) == 1
    ttl = cache._cache.get_client(key).ttl(cache.make_and_validate_key(key))
    assert 0 < ttl <= 60


@pytest.mark.redis
def test_a_throttle_hit_is_one_redis_round_trip_and_its_window_expires(monkeypatch):
    # Every kiosk request counts one (the per-device limit): it was three round trips.
    import redis
    from django.core.cache import cache

    from tenants import throttle

    sent = []
    send = redis.connection.Connection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(command)
        return send(self, command, check_health)

    key = throttle._key("kiosk", "43")
    cache.delete(key)
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counted)
    assert [throttle.hit("kiosk", "43", window=60) for _ in range(3)] == [1, 2, 3]
    assert len(sent) == 3
    monkeypatch.undo()
    ttl = cache._cache.get_client(key).ttl(cache.make_and_validate_key(key))
    assert 0 < ttl <= 60


def test_panel_dashboard_and_admin_pages_tell_browsers_and_proxies_not_to_store_them(
    admin_client, bob, tenant, cryo, django_user_model
):
    # They show customers' names, CPFs and the takings: neither the cache of a shared
    # computer nor a proxy may keep a copy.
    from django.contrib import admin

    from tests.conftest import make_device, queued_ticket

    ticket = queued_ticket(tenant, [cryo])
    station = make_device(tenant, "Crio 1", [cryo])
    manager = Client()
    manager.force_login(bob)
    slug = tenant.slug
    period = {"start": "2026-01-01", "end": "2026-01-31"}
    responses = {
        "panel home": manager.get(reverse("panel_home")),
        "panel stations": manager.get(reverse("panel", args=[slug])),
        "choose a station": manager.post(
            reverse("panel_station", args=[slug]), {"station": station.pk}
        ),
        "panel": manager.get(reverse("panel", args=[slug])),
        "line": manager.get(
            reverse("panel_line_detail", args=[slug, ticket.lines.get().pk]), HTTP_HX_REQUEST="true"
        ),
        "dashboard": manager.get(reverse("ops_dashboard", args=[slug])),
        "tickets export": manager.get(reverse("ops_export_tickets", args=[slug]), period),
        "payments export": manager.get(reverse("ops_export_payments", args=[slug]), period),
        "LGPD": manager.get(reverse("ops_customer_data", args=[slug])),
        "admin login": Client().get(reverse("admin:login")),
        "admin index": admin_client.get(reverse("admin:index")),
        "admin ticket": admin_client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk])),
    }
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        responses[name] = admin_client.get(reverse(name))
    for name, response in responses.items():
        assert response.status_code in (200, 302), (name, response.status_code)
        assert "no-store" in response.get("Cache-Control", ""), (name, response.headers)
