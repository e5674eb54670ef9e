"""Schemathesis against the live OpenAPI document: every operation of /api/v1/ is called with
data generated from its schema (valid and invalid), in process through Django's WSGI
handler, and each answer must be no 5xx and conform to the document (status, media type,
headers, body). Bounded: a few examples per operation, well under a minute in all."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig

from payments.models import PaymentSettings
from tests.conftest import make_device, queued_ticket
from tests.test_api import make_key

# A request valid by the schema may still be refused for what it means: a cursor this list
# did not give (400), a CPF with wrong check digits or a service not on sale (422), an id of
# nothing (404), a state that refuses the operation (409).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422", "429"]
            }
        }
    }
)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", get_wsgi_application(), config=CONFIG
)
EXAMPLES = 10


@pytest.fixture(autouse=True)
def _one_connection():
    """Django's handler closes old connections as each request starts and ends; the test's
    connection holds the test's transaction (and, on PostgreSQL, would be closed under it).
    Django's own test client unhooks the same signals."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_its_schema_says(case, tenant, dave, cryo, boots, settings):
    settings.API_REQUESTS_PER_MINUTE = 100_000
    if not PaymentSettings.objects.filter(tenant=tenant).exists():
        PaymentSettings.objects.create(tenant=tenant, cash_enabled=True)
        make_device(tenant, "Crio 1", [cryo, boots])
        queued_ticket(tenant, [cryo, boots], customer_name="Maria Souza", cpf="52998224725")
    key = make_key(tenant, dave, read=True, sell=True, operate=True)
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"})
