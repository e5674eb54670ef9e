"""The admin in pt-BR: no English word of the admin's own UI, no raw status code, no cash
"Troco" where Django means "Modificar"."""

from __future__ import annotations

import datetime
import gettext
import re
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
import simple_history
from django.conf import settings
from django.contrib import admin
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.text import capfirst

from equipment.models import DeviceServiceSettings, JobKind, Kind, PrinterSettings, PrintJob
from ops.models import Alert, AlertKind, DailyStats, DeviceDailyStats, NotificationSettings
from payments.models import Notification, Provider
from payments.sessions import confirm_cash, start_payment
from tenants.models import AuditAction, AuditLog, WebhookEndpoint, WebhookEvent, WebhookOutbox
from tests.conftest import make_device, make_ticket
from tests.test_waivers import questionnaire_for
from tickets import credits, waivers
from tickets.models import CustomerPackage, Package, PackageService
from totem.models import DisplaySlide, PairingCode

PROJECT_APPS = {"tenants", "customers", "tickets", "payments", "equipment", "totem", "ops"}

# Words of Django's and simple-history's English UI, matched as whole words and case-sensitive
# so pt-BR text ("Nome", "Gostaria", "Adicionar") never matches.
ENGLISH = [
    "Change",
    "Add",
    "History",
    "Delete",
    "Save",
    "Search",
    "None",
    "Filter",
    "Action",
    "Date/time",
    "User",
    "Comment",
    "Object",
    "ago",
    "Go",
    "Changed by",
    "Change reason",
    "Created",
    "Changed",
    "Deleted",
    "Unknown",
    "Home",
    "View",
    "Select",
    "all",
]
ENGLISH_RE = re.compile(r"(?<![\w/])(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?![\w/])")
VISIBLE_ATTRIBUTES = {"title", "aria-label", "placeholder"}


class VisibleText(HTMLParser):
    """The text a person reads: no script or style, attributes only where a browser shows them
    (a tooltip, a screen reader's label, a placeholder, a button's value)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in ("script", "style", "template"):
            self._hidden += 1
        values = dict(attrs)
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value:
                self.parts.append(value)
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"])

    def handle_endtag(self, tag) -> None:
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


def raw_codes() -> set[str]:
    """Every stored choice value of the project that would not pass for a word of pt-BR."""
    codes = set()
    for model in django.apps.apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        for field in model._meta.get_fields():
            for value, _label in getattr(field, "flatchoices", None) or []:
                if isinstance(value, str) and "_" in value:
                    codes.add(value)
    return codes


def catalogue(path: Path) -> dict[str, str]:
    with path.open("rb") as file:
        return {k: v for k, v in gettext.GNUTranslations(file)._catalog.items() if k}


# Same meaning, other words: ours stay on purpose ("Senha de acesso" keeps a login's password
# apart from a customer's ticket, the "senha").
SAME_MEANING = {"Log in", "Log out", "Logged out", "IP address", "Password", "username"}


def test_no_msgid_of_ours_gives_a_django_or_history_string_another_meaning():
    ours = catalogue(Path(settings.BASE_DIR) / "locale/pt_BR/LC_MESSAGES/django.mo")
    django_dir = Path(django.__file__).parent
    theirs = [
        django_dir / "conf/locale/pt_BR/LC_MESSAGES/django.mo",
        django_dir / "contrib/admin/locale/pt_BR/LC_MESSAGES/django.mo",
        django_dir / "contrib/auth/locale/pt_BR/LC_MESSAGES/django.mo",
        django_dir / "contrib/contenttypes/locale/pt_BR/LC_MESSAGES/django.mo",
        Path(simple_history.__file__).parent / "locale/pt_BR/LC_MESSAGES/django.mo",
    ]
    collisions = set()
    for path in theirs:
        other = catalogue(path)
        collisions |= {
            msgid for msgid, text in ours.items() if msgid in other and other[msgid] != text
        }
    assert collisions - SAME_MEANING == set()


@pytest.fixture
def world(tenant, cryo, towel, alice, bob, admin_user):
    """One row of every model the admin shows, in `tenant`."""
    package = Package.objects.create(tenant=tenant, name="10 crio", price=900, validity_days=90)
    PackageService.objects.create(package=package, service=cryo, sessions=10)
    ticket = make_ticket(tenant, [cryo], cpf="52998224725", buy_packages=[package.pk])
    session = start_payment(ticket, "cash")
    confirm_cash(tenant, session.pk, alice, "1000")
    sold = CustomerPackage.objects.get()
    credits.adjust(tenant, sold.credits.get().pk, 1, user=bob, reason="cortesia")
    chamber = make_device(tenant, "Crio 1", [cryo])
    DeviceServiceSettings.objects.create(equipment=chamber, service=cryo, cooldown_minutes=4)
    DeviceDailyStats.objects.create(tenant=tenant, equipment=chamber, day=datetime.date(2026, 1, 5))
    printer = make_device(tenant, "Caixa", kind=Kind.PRINTER)
    PrinterSettings.objects.create(equipment=printer)
    PrintJob.objects.create(tenant=tenant, printer=printer, kind=JobKind.TICKET, ticket=ticket)
    kiosk = make_device(tenant, "Totem 1", kind=Kind.KIOSK)
    PairingCode.objects.create(tenant=tenant, equipment=kiosk)
    DisplaySlide.objects.create(tenant=tenant, title="Bem-vindo", text="Hidrate-se.")
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, target_url="https://hooks.example.com/totem", secret="s" * 16
    )
    WebhookOutbox.objects.create(
        tenant=tenant, endpoint=endpoint, event_type=WebhookEvent.choices[0][0], payload={}
    )
    Notification.objects.create(tenant=tenant, provider=Provider.MERCADOPAGO)
    NotificationSettings.objects.create(tenant=tenant)
    Alert.objects.create(tenant=tenant, kind=AlertKind.choices[0][0], message="Fila parada")
    DailyStats.objects.create(tenant=tenant, day=datetime.date(2026, 1, 5))
    # A health form and a signature that waits for the team.
    questionnaire = questionnaire_for(cryo)
    waivers.sign(tenant, waivers.current_version(questionnaire), [True, True], signed_name="Maria")
    return ticket


def first_row(model: type[models.Model], tenant) -> models.Model | None:
    rows = model._base_manager.order_by("pk")
    if any(f.name == "tenant" for f in model._meta.get_fields()):
        rows = rows.filter(tenant=tenant)
    return rows.first()


def pages(client, admin_client, tenant) -> tuple[list[tuple[str, str]], list[str]]:
    """(url, html) of every changelist, change form and history page of the project's models;
    a page a manager may not open (platform-only) as the superuser sees it."""
    opened, missing = [], []
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label not in PROJECT_APPS:
            continue
        base = f"admin:{meta.app_label}_{meta.model_name}"
        urls = [reverse(f"{base}_changelist")]
        row = first_row(model, tenant)
        if row is None:
            missing.append(meta.label)
        else:
            urls.append(reverse(f"{base}_change", args=[row.pk]))
            urls.append(reverse(f"{base}_history", args=[row.pk]))
        for url in urls:
            response = client.get(url, headers={"accept-language": "pt-BR"})
            if response.status_code in (302, 403, 404):
                response = admin_client.get(url, headers={"accept-language": "pt-BR"})
            assert response.status_code == 200, url
            opened.append((url, response.content.decode()))
    return opened, missing


def test_every_admin_page_a_manager_opens_reads_in_portuguese(
    client, admin_client, bob, tenant, world, settings
):
    settings.LANGUAGE_CODE = "pt-br"
    client.force_login(bob)
    codes = raw_codes()
    problems = []
    opened, missing = pages(client, admin_client, tenant)
    for url, html in opened:
        text = visible_text(html)
        for line in text.splitlines():
            # "No" alone: "No máximo 25 letras" is pt-BR.
            english = ENGLISH_RE.findall(line) + [w for w in ("Yes", "No") if line == w]
            if english:
                problems.append(f"{url}: English {english} in {line!r}")
            if "Troco" in line and "/payments/" not in url:
                problems.append(f"{url}: Troco in {line!r}")
            found = {code for code in codes if re.search(rf"\b{re.escape(code)}\b", line)}
            if found:
                problems.append(f"{url}: raw codes {sorted(found)} in {line!r}")
    assert problems == [], "\n".join(problems)
    assert missing == [], f"no row to open for {missing}"


def test_the_audit_log_names_objects_as_people_say_them(client, bob, tenant, world):
    client.force_login(bob)
    older = AuditLog.objects.create(
        tenant=tenant, action=AuditAction.LOGIN, entity="auth.user", entity_id="7"
    )
    session = world.payment_sessions.get()
    with CaptureQueriesContext(connection) as queries:
        text = visible_text(client.get(reverse("admin:tenants_auditlog_changelist")).text)
    assert (
        f"{capfirst(session._meta.verbose_name)} {session}" in text
        and str(AuditAction.PAYMENT_CONFIRMED.label) in text
    )
    assert "auth.user 7" in text  # written before labels: as it was
    assert "payments.paymentsession" not in text
    # One query more for the entries, never one per entry.
    AuditLog.objects.bulk_create(
        [AuditLog(tenant=tenant, action=AuditAction.LOGIN, entity="auth.user", label="bob")] * 5
    )
    with CaptureQueriesContext(connection) as more:
        client.get(reverse("admin:tenants_auditlog_changelist"))
    assert len(more) == len(queries)
    assert older.object_name == "auth.user 7"
