"""PIX BR Code (EMV® QRCPS-MPM) built locally, for the static PIX that needs no provider.

Follows the Central Bank's "Manual de Padrões para Iniciação do Pix": each field is
`ID` + two-digit length + value; the last field is the CRC16-CCITT-FALSE of everything before
it, including its own "6304" header.

The PIX key in field 26-01 is the key exactly as the DICT (the Central Bank's key directory)
stores it, because the payer's bank looks it up as written: the manual's section "Formatação
das chaves do DICT no BR Code" and the DICT API's key table (bcb.gov.br, API-DICT, tag "Key";
github.com/bacen/pix-dict-api, openapi.yaml) give each type's form:

| type  | DICT form                                  | example                              |
| ----- | ------------------------------------------ | ------------------------------------ |
| CPF   | `^[0-9]{11}$`                              | 12345678901                          |
| CNPJ  | `^[0-9]{14}$`                              | 12345678901234                       |
| PHONE | E.164, `+` and country code                | +5510998765432                       |
| EMAIL | lower case, at most 77 characters (regex)  | pix@bcb.gov.br                       |
| EVP   | lower-case UUID, `8-4-4-4-12` hex digits   | 123e4567-e89b-12d3-a456-426655440000 |

`normalize_pix_key` turns what a studio types into that form or refuses it.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

import segno
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from tenants.br import normalize_cnpj, normalize_cpf, normalize_phone, typed_digits, visible_text

GUI = "br.gov.bcb.pix"
# EMV QRCPS-MPM, data objects 59 (Merchant Name) and 60 (Merchant City): format "ans" (the
# printable ASCII 0x20–0x7E), at most 25 and 15 characters; the Pix manual's static QR table
# keeps both mandatory and the same sizes.
NAME_LIMIT = 25
CITY_LIMIT = 15
# The DICT API's e-mail key: this pattern, lower case, at most 77 characters.
EMAIL_KEY = re.compile(
    r"[a-z0-9.!#$&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
    re.ASCII,
)
EMAIL_KEY_MAX = 77
EVP_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
# How people type documents (`\d` is any script's digit; `normalize_cpf`/`normalize_cnpj` make
# them ASCII): bare, or with the usual dots, slash and dash. Anything else made of digits and
# phone punctuation is read as a phone, so "(11) 91234-5678" and "11 91234-5678" are phones.
CPF_TYPED = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")
CNPJ_TYPED = re.compile(r"\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}")
# The alphanumeric CNPJ (Receita Federal, IN RFB 2.229/2024): 12 letters or digits, 2 digits.
CNPJ_ALPHANUMERIC = re.compile(
    r"[0-9A-Z]{2}\.?[0-9A-Z]{3}\.?[0-9A-Z]{3}/?[0-9A-Z]{4}-?[0-9]{2}", re.ASCII | re.IGNORECASE
)


def crc16(payload: str) -> str:
    """CRC16-CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR), 4 hex digits."""
    crc = 0xFFFF
    for byte in payload.encode("utf-8"):
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def field(tag: str, value: str) -> str:
    length = len(value.encode("utf-8"))
    if length > 99:
        raise ValueError(f"BR Code field {tag} is longer than 99 bytes")
    return f"{tag}{length:02d}{value}"


def plain(text: str, limit: int) -> str:
    """Printable ASCII without accents, trimmed: the EMV "ans" format of fields 59 and 60;
    bank apps reject or garble other characters. Letters of other scripts are dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if " " <= c <= "~" or c.isspace())
    return " ".join(ascii_text.split())[:limit].strip()


def has_letter(text: str) -> bool:
    """Whether `text` keeps an ASCII letter: a name or city of digits and symbols only, or of
    letters that `plain` drops, would be empty or meaningless in the payer's bank app."""
    return any("A" <= c <= "Z" or "a" <= c <= "z" for c in text)


def clean_merchant_text(value: str, limit: int) -> str:
    """`value` as typed, or ValidationError when its BR Code form (`plain`) has no letter."""
    if not has_letter(plain(value, limit)):
        raise ValidationError(
            _(
                "Without accents and letters of other alphabets this keeps no letter from A "
                "to Z, and the bank app would show it empty. Write it in Latin letters."
            ),
            code="no_latin_letter",
        )
    return value


def normalize_pix_key(value: str) -> str:
    """The PIX key typed in the DICT's form (see the table above), or ValidationError.

    The type is read from the input: an "@" is an e-mail (lower-cased; the DICT's pattern and
    77 characters), a UUID is a random key (lower-cased), a CPF or CNPJ typed bare or with
    its usual dots, slash and dash must have valid check digits, and other digits with phone
    punctuation are a Brazilian mobile, stored as "+55" + DDD + number. A phone key is a
    mobile number (the Central Bank lists "número de telefone celular" among the key types),
    so a landline or a foreign number is refused. Bare 11 digits are a CPF, as the DICT
    writes it; a mobile typed that way gets the CPF error, which says how to write a phone.
    """
    text = unicodedata.normalize("NFKC", visible_text(value))
    if not text:
        raise ValidationError(_("Type the PIX key."), code="required")
    if "@" in text:
        email = text.lower()
        if len(email) > EMAIL_KEY_MAX or not EMAIL_KEY.fullmatch(email):
            raise ValidationError(
                _("Invalid e-mail key: at most 77 characters, no accents or spaces."),
                code="invalid_pix_email",
            )
        return email
    if EVP_KEY.fullmatch(text.lower()):
        return text.lower()
    if CPF_TYPED.fullmatch(text):
        try:
            return normalize_cpf(text)
        except ValidationError:
            raise ValidationError(
                _(
                    "Invalid CPF. For a mobile phone key, write +55 and the area code: "
                    "+55 11 91234-5678."
                ),
                code="invalid_cpf",
            ) from None
    if CNPJ_TYPED.fullmatch(text):
        return normalize_cnpj(text)
    if CNPJ_ALPHANUMERIC.fullmatch(text):
        raise ValidationError(
            _(
                "An alphanumeric CNPJ cannot be used as the PIX key here yet. Use another key "
                "of the account: e-mail, mobile phone or random key."
            ),
            code="alphanumeric_cnpj",
        )
    number = typed_digits(text)
    if number:
        if text.startswith("+"):
            if not number.startswith("55"):
                raise ValidationError(
                    _("A PIX phone key is a Brazilian mobile number: +55, area code and number."),
                    code="invalid_pix_phone",
                )
            number = number[2:]
        elif len(number) in (12, 13) and number.startswith("55"):
            number = number[2:]
        if len(number) != 11:
            raise ValidationError(
                _("A PIX phone key is a mobile number: +55, area code and 9 digits."),
                code="invalid_pix_phone",
            )
        # Eleven digits: `normalize_phone` checks the area code and the mobile's leading 9.
        return f"+55{normalize_phone(number)}"
    raise ValidationError(
        _(
            "This is not a PIX key. Use a CPF, a CNPJ, a mobile phone with +55, an e-mail or "
            "a random key."
        ),
        code="invalid_pix_key",
    )


def is_canonical_pix_key(key: str) -> bool:
    """Whether `key` is already in the DICT's form: what a BR Code may carry."""
    try:
        return normalize_pix_key(key) == key
    except ValidationError:
        return False


def clean_txid(txid: str) -> str:
    """Letters and digits only, at most 25; `***` when there is none (static PIX rule)."""
    txid = re.sub(r"[^A-Za-z0-9]", "", txid or "")[:25]
    return txid or "***"


def build_brcode(
    *,
    key: str,
    name: str,
    city: str,
    amount: Decimal | None = None,
    txid: str = "",
    info: str = "",
) -> str:
    """The copia-e-cola text of a static PIX for `key`, optionally with a fixed amount.

    `key` must already be in the DICT's form and `name` and `city` must keep a letter (the
    settings form sees to both); anything else raises ValueError rather than print a code
    the payer's bank cannot resolve or decoders refuse for an empty field 59 or 60.
    """
    if not is_canonical_pix_key(key):
        raise ValueError("the PIX key is not in the DICT's form (normalize_pix_key)")
    name, city = plain(name, NAME_LIMIT), plain(city, CITY_LIMIT)
    if not (has_letter(name) and has_letter(city)):
        raise ValueError("the merchant name and city must keep a letter in ASCII")
    account = field("00", GUI) + field("01", key)
    if info:
        account += field("02", plain(info, 40))
    payload = (
        field("00", "01")
        + field("26", account)
        + field("52", "0000")
        + field("53", "986")
        + (field("54", f"{amount:.2f}") if amount else "")
        + field("58", "BR")
        + field("59", name)
        + field("60", city)
        + field("62", field("05", clean_txid(txid)))
        + "6304"
    )
    return payload + crc16(payload)


def qr_svg(text: str, scale: int = 6) -> str:
    """An inline SVG QR code of `text` (the kiosk shows it; no image files, no network)."""
    return segno.make(text, error="m").svg_inline(scale=scale, border=2)
