"""Static PIX BR Code: keys stored as the DICT writes them, names and cities a bank app can show,
and every code read back by an independent decoder (pixcanvas, from PyPI).

The Central Bank manual's own example stays byte-identical (tests/test_payments.py).
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from pixcanvas import validate_pix
from pixcanvas.core.emv import decode_tlv

from payments.brcode import build_brcode, crc16, field, normalize_pix_key
from payments.models import PaymentSettings
from payments.sessions import start_payment
from tests.conftest import make_ticket
from tests.test_identity_input import migrate_to_latest

CPF = "52998224725"
CNPJ = "11222333000181"
PHONE = "+5511912345678"
EMAIL = "studio@example.com"
EVP = "123e4567-e89b-12d3-a456-426655440000"

TYPED = [
    # CPF: digits only, as the DICT stores it (`^[0-9]{11}$`); any script's digits.
    ("529.982.247-25", CPF),
    ("52998224725", CPF),
    (" 529.982.247-25 ", CPF),
    ("５２９.９８２.２４７-２５", CPF),
    # CNPJ: digits only (`^[0-9]{14}$`).
    ("11.222.333/0001-81", CNPJ),
    ("11222333000181", CNPJ),
    # Phone: E.164, "+55" + DDD + mobile number.
    ("+55 (11) 91234-5678", PHONE),
    ("(11) 91234-5678", PHONE),
    ("11 91234-5678", PHONE),
    ("5511912345678", PHONE),
    ("+5511912345678", PHONE),
    # E-mail: lower case.
    ("Studio@Example.COM", EMAIL),
    # Random key: lower-case UUID.
    ("123E4567-E89B-12D3-A456-426655440000", EVP),
]


@pytest.mark.parametrize(("typed", "canonical"), TYPED)
def test_a_pix_key_is_stored_as_the_dict_writes_it_whatever_its_type(typed, canonical):
    assert normalize_pix_key(typed) == canonical
    assert normalize_pix_key(canonical) == canonical  # canonical is a fixed point


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("529.982.247-26", "invalid_cpf"),  # wrong check digit
        ("11912345678", "invalid_cpf"),  # bare 11 digits are a CPF; this is not one
        ("111.111.111-11", "invalid_cpf"),
        ("11.222.333/0001-82", "invalid_cnpj"),
        ("12.ABC.345/01DE-35", "alphanumeric_cnpj"),
        ("+1 415 555 2671", "invalid_pix_phone"),  # not Brazilian
        ("+55 91234-5678", "invalid_pix_phone"),  # no area code
        ("(11) 3123-4567", "invalid_pix_phone"),  # a landline
        ("(11) 81234-5678", "invalid_phone"),  # eleven digits without the mobile 9
        ("josé@example.com", "invalid_pix_email"),
        ("studio@exa mple.com", "invalid_pix_email"),
        ("a" * 66 + "@example.com", "invalid_pix_email"),  # 78 characters, over 77
        ("123e4567-e89b-12d3-a456-42665544000g", "invalid_pix_key"),
        ("Studio Alfa", "invalid_pix_key"),
        ("---", "invalid_pix_key"),
        ("\u200b", "required"),
    ],
)
def test_what_fits_no_key_type_is_refused_with_the_reason(typed, code):
    with pytest.raises(ValidationError) as refused:
        normalize_pix_key(typed)
    assert refused.value.code == code


def test_an_e_mail_key_of_77_characters_is_the_longest_accepted():
    longest = "a" * 65 + "@example.com"
    assert len(longest) == 77 and normalize_pix_key(longest) == longest


# --- every code through an independent decoder ------------------------------------------------

NAMES = [
    # (name typed, city typed, field 59 expected, field 60 expected)
    ("Studio Alfa", "Recife", "Studio Alfa", "Recife"),
    ("Clínica Ação & Cia", "São João d'Aliança", "Clinica Acao & Cia", "Sao Joao d'Alia"),
    ("Студия Ália Crio", "Brasília", "Alia Crio", "Brasilia"),
    ("東京 Spa ﬁt", "Niterói 東京", "Spa fit", "Niteroi"),
    (
        "Studio Ália Recuperação e Bem-estar",
        "Florianópolis SC",
        "Studio Alia Recuperacao e",
        "Florianopolis S",
    ),
]
AMOUNTS = [None, Decimal("0.01"), Decimal("125.00"), Decimal("99999999.99")]


def raw_fields(code: str) -> dict[str, str]:
    """Field 26's key and the root fields, read by pixcanvas's own TLV decoder: its parser
    normalises keys, so a non-canonical key would pass `validate_pix` unless read raw."""
    root = {f.field_id: f.value for f in decode_tlv(code)}
    account = {f.field_id: f.value for f in decode_tlv(root["26"])}
    return {**root, "26-01": account["01"]}


@pytest.mark.parametrize("key", [CPF, CNPJ, PHONE, EMAIL, EVP])
@pytest.mark.parametrize("amount", AMOUNTS)
@pytest.mark.parametrize(("name", "city", "field59", "field60"), NAMES)
def test_every_generated_code_passes_an_independent_decoder(
    key, amount, name, city, field59, field60
):
    code = build_brcode(key=key, name=name, city=city, amount=amount, txid="TOTEM42")
    result = validate_pix(code)
    # A ValidationResult is truthy even when invalid: read its fields.
    assert result.is_valid, result.errors
    assert result.errors == ()
    assert result.pix.pix_key == key and result.pix.txid == "TOTEM42"
    assert result.pix.amount == amount  # none: an open amount, no field 54
    fields = raw_fields(code)
    assert fields["26-01"] == key
    assert (fields["59"], fields["60"]) == (field59, field60)
    assert ("54" in fields) == (amount is not None)


def test_the_decoder_refuses_what_the_old_code_printed_for_a_name_with_no_latin_letter():
    """Before this change a name like "東京スタジオ" became an empty field 59. The decoder is
    strict about it, so the test above can fail; the builder now refuses such a name."""
    payload = (
        field("00", "01")
        + field("26", field("00", "br.gov.bcb.pix") + field("01", EMAIL))
        + field("52", "0000")
        + field("53", "986")
        + field("58", "BR")
        + field("59", "")
        + field("60", "Recife")
        + field("62", field("05", "***"))
        + "6304"
    )
    assert not validate_pix(payload + crc16(payload)).is_valid
    with pytest.raises(ValueError):
        build_brcode(key=EMAIL, name="東京スタジオ", city="Recife")
    with pytest.raises(ValueError):
        build_brcode(key=EMAIL, name="Studio", city="Москва")


def test_the_builder_refuses_a_key_not_in_the_dicts_form():
    for typed in ("529.982.247-25", "(11) 91234-5678", "Studio@Example.com"):
        with pytest.raises(ValueError):
            build_brcode(key=typed, name="Studio", city="Recife")


# --- the admin form -------------------------------------------------------------------------


def settings_form(tenant, **changes) -> dict:
    return {
        "tenant": tenant.pk,
        "pix_enabled": "on",
        "cash_enabled": "on",
        "pix_provider": "pix_static",
        "mercadopago_access_token": "",
        "mercadopago_webhook_secret": "",
        "mercadopago_point_device": "",
        "point_api": "orders",
        "payer_email": "",
        "pix_key": EMAIL,
        "merchant_name": "Studio",
        "merchant_city": "Recife",
        **changes,
    }


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("529.982.247-25", CPF),
        ("11.222.333/0001-81", CNPJ),
        ("(11) 91234-5678", PHONE),
        ("Studio@Example.COM", EMAIL),
        ("123E4567-E89B-12D3-A456-426655440000", EVP),
    ],
)
def test_the_admin_stores_the_key_in_the_dicts_form(client, bob, tenant, typed, canonical):
    config = PaymentSettings.objects.create(tenant=tenant)
    client.force_login(bob)
    url = f"/admin/payments/paymentsettings/{config.pk}/change/"
    response = client.post(url, settings_form(tenant, pix_key=typed))
    assert response.status_code == 302, response.content.decode()[:2000]
    config.refresh_from_db()
    assert config.pix_key == canonical


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"pix_key": "529.982.247-26"}, "CPF inválido. Para uma chave de celular"),
        ({"pix_key": "(11) 3123-4567"}, "A chave PIX de telefone é um celular"),
        ({"pix_key": "Studio Alfa"}, "Isto não é uma chave PIX"),
        ({"merchant_name": "東京スタジオ"}, "não sobra nenhuma letra de A a Z"),
        ({"merchant_city": "Москва"}, "não sobra nenhuma letra de A a Z"),
        ({"merchant_city": "123 - 456"}, "não sobra nenhuma letra de A a Z"),
    ],
)
def test_the_admin_refuses_a_key_name_or_city_a_bank_app_cannot_use(
    client, bob, tenant, changes, error
):
    config = PaymentSettings.objects.create(
        tenant=tenant, pix_key=PHONE, merchant_name="Studio", merchant_city="Recife"
    )
    client.force_login(bob)
    url = f"/admin/payments/paymentsettings/{config.pk}/change/"
    response = client.post(url, settings_form(tenant, **changes))
    assert response.status_code == 200
    assert error in response.content.decode()
    config.refresh_from_db()
    assert (config.pix_key, config.merchant_name, config.merchant_city) == (
        PHONE,
        "Studio",
        "Recife",
    )


def test_a_key_stored_as_typed_before_this_change_stops_static_pix_rather_than_print_it(
    tenant, cryo
):
    config = PaymentSettings.objects.create(
        tenant=tenant, pix_key="(11) 3123-4567", merchant_name="Studio", merchant_city="Recife"
    )
    assert config.enabled_methods() == ["cash"]
    PaymentSettings.objects.filter(pk=config.pk).update(pix_key=PHONE)
    session = start_payment(make_ticket(tenant, [cryo]), "pix")
    assert session.provider == "pix_static"
    assert validate_pix(session.qr_code).is_valid
    assert raw_fields(session.qr_code)["26-01"] == PHONE
    assert session.qr_code.startswith("000201") and "5406120.00" in session.qr_code


# --- the data migration ---------------------------------------------------------------------

BEFORE = ("payments", "0002_encrypted_secrets")
AFTER = ("payments", "0003_canonical_pix_key")


def migrate(target: tuple[str, str] | None = None) -> None:
    """To `target`, or (None) back to every app's latest migration: going back to BEFORE
    also reversed the migrations of other apps that depend on payments (fiscal's)."""
    if target is None:
        migrate_to_latest()
        return
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_stored_keys_canonical_and_logs_what_it_cannot(
    tenant, other_tenant, caplog
):
    typed = PaymentSettings.objects.create(
        tenant=tenant, pix_key="529.982.247-25", merchant_name="Studio", merchant_city="Recife"
    )
    broken = PaymentSettings.objects.create(
        tenant=other_tenant, pix_key="(11) 3123-4567", merchant_name="東京", merchant_city="Rio"
    )
    caplog.set_level(logging.WARNING, logger="payments.migrations")
    try:
        migrate(BEFORE)
        migrate(AFTER)
    finally:
        migrate()
    typed.refresh_from_db()
    broken.refresh_from_db()
    assert typed.pix_key == CPF
    assert broken.pix_key == "(11) 3123-4567"  # left for the admin to correct
    warnings = [r.getMessage() for r in caplog.records if r.name == "payments.migrations"]
    assert len(warnings) == 2
    assert f"#{broken.pk}" in warnings[0] and "invalid_pix_phone" in warnings[0]
    assert "merchant_name" in warnings[1]
    assert not any("3123" in message for message in warnings)  # no personal data in logs
