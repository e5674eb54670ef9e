"""Run the fake MercadoPago API beside the app, for the demo without an account.

    manage.py run_fake_mercadopago --port 8001 --app-url http://127.0.0.1:8000 --tenant demo

Start the app with MERCADOPAGO_BASE_URL=http://127.0.0.1:8001 so the SDK talks to it. A
tenant without MercadoPago credentials gets demo ones (PIX through MercadoPago, card on a demo
Point terminal); real credentials are never overwritten. "Simular pagamento" and "Simular
recusa" on the kiosk's payment screen ask this server to approve or refuse the payment, and it
sends the app a correctly signed webhook.
"""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from payments.fake_mercadopago import FakeMercadoPago
from payments.fake_mercadopago_orders import DEMO_TERMINAL
from payments.models import PaymentSettings, Provider
from tenants.models import Tenant

DEMO_TOKEN = "TEST-demo-access-token"
DEMO_SECRET = "demo-webhook-secret"
DEMO_DEVICE = DEMO_TERMINAL


def configure_demo_tenant(tenant: Tenant) -> tuple[PaymentSettings, bool]:
    """Demo MercadoPago credentials for a tenant that has none; (settings, whether set)."""
    config, _created = PaymentSettings.objects.get_or_create(tenant=tenant)
    if config.mercadopago_access_token:
        return config, False
    config.mercadopago_access_token = DEMO_TOKEN
    config.mercadopago_webhook_secret = DEMO_SECRET
    config.mercadopago_point_device = DEMO_DEVICE
    config.pix_provider = Provider.MERCADOPAGO
    config.pix_enabled = config.card_enabled = config.cash_enabled = True
    config.payer_email = config.payer_email or "demo@totem.invalid"
    config.save()
    return config, True


def demo_fake(config: PaymentSettings, host: str, port: int, app_url: str) -> FakeMercadoPago:
    """The fake the demo runs for a tenant (not started): its webhooks go to the app at
    `app_url`, signed with the tenant's secret, half a second after the payment moves — as a
    real notification comes a moment after the customer pays. OSError when it cannot
    listen."""
    return FakeMercadoPago(
        host,
        port,
        webhook_url=f"{app_url.rstrip('/')}/t/{config.tenant.slug}/pagamentos/webhook/mercadopago/",
        secret=config.mercadopago_webhook_secret,
        webhook_delay=0.5,
    )


class Command(BaseCommand):
    help = "Serve a fake MercadoPago API (demo and tests): approves on request, signs webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--app-url", default="http://127.0.0.1:8000")
        parser.add_argument("--tenant", default="demo", help="slug of the tenant it notifies")

    def handle(self, *args, host: str, port: int, app_url: str, tenant: str, **options):
        try:
            found = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant with slug {tenant!r}; run manage.py seed_demo") from None
        config, changed = configure_demo_tenant(found)
        if changed:
            self.stdout.write(f"{found.name}: demo MercadoPago credentials set (PIX and card).")
        try:
            fake = demo_fake(config, host, port, app_url)
        except OSError as error:
            raise CommandError(f"cannot listen on {host}:{port}: {error}") from None
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        fake.start()
        self.stdout.write(
            f"Fake MercadoPago on {fake.url} → webhooks to {fake.webhook_url}\n"
            f"Run the app with MERCADOPAGO_BASE_URL={fake.url}"
        )
        stop.wait()
        fake.stop()
        self.stdout.write("Fake MercadoPago stopped.")
