"""Brazilian document and phone rules, and people's names: validate, normalise, mask.

Every CPF and phone is stored as ASCII digits whatever script it was typed in, so one customer
is one CPF for the LGPD export and erasure, the one-customer-per-service rule and admin search.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# What may surround the digits of a CPF or phone: "529.982.247-25", "+55 (11) 91234-5678".
DOCUMENT_PUNCTUATION = frozenset(".-/()+")
# Letters (category Lo) that render as blank space: a name made of them looks empty.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def _invisible(char: str) -> bool:
    """Controls (Cc) and format characters (Cf): the bidi controls U+202A–202E, U+2066–2069,
    U+200E/200F and U+061C, the zero-width U+200B–200D, U+2060 and U+FEFF, soft hyphen, tags…
    They change how the text around them is shown, or hide in it, and mean nothing typed."""
    return unicodedata.category(char) in ("Cc", "Cf") or char in _BLANK_LETTERS


def digits(value: str) -> str:
    """The decimal digits of `value` as ASCII, whatever digits they were typed in; the rest
    is dropped.

    NFKC first, so compatibility forms become their plain digit (fullwidth "５", superscript
    "²", circled "①"); then each character of category Nd (Arabic-Indic "٥", Persian "۵",
    Devanagari "५", …) becomes its ASCII digit by `unicodedata.digit`. Digit-like characters
    NFKC leaves alone but that are not decimal digits (Kharosthi, Roman numerals) are not kept.
    """
    text = unicodedata.normalize("NFKC", value or "")
    return "".join(str(unicodedata.digit(c)) for c in text if unicodedata.category(c) == "Nd")


def typed_digits(value: str) -> str | None:
    """The ASCII digits of a document or phone as typed, or None when it holds anything but
    digits, white space, DOCUMENT_PUNCTUATION and invisible characters (after NFKC, so
    fullwidth "．" and "－" are punctuation too). A letter or a "½" is not a slip to drop
    silently: it makes the value invalid."""
    text = unicodedata.normalize("NFKC", value or "")
    for char in text:
        if not (
            unicodedata.category(char) == "Nd"
            or char in DOCUMENT_PUNCTUATION
            or char.isspace()
            or _invisible(char)
        ):
            return None
    return digits(text)


def normalize_cpf(value: str) -> str:
    """The 11 ASCII digits of a valid CPF, or ValidationError. Accepts dots and dash, and
    digits of any script (see `digits`)."""
    cpf = typed_digits(value)
    if cpf is None or len(cpf) != 11 or cpf == cpf[0] * 11:
        raise ValidationError(_("Invalid CPF."), code="invalid_cpf")
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(cpf[:size], range(size + 1, 1, -1), strict=True))
        check = (total * 10) % 11 % 10
        if check != int(cpf[size]):
            raise ValidationError(_("Invalid CPF."), code="invalid_cpf")
    return cpf


def normalize_cnpj(value: str) -> str:
    """The 14 ASCII digits of a valid numeric CNPJ, or ValidationError. Accepts dots, slash
    and dash, and digits of any script (see `digits`).

    Check digits by modulo 11 with the weights 2–9 from the right, as the Receita Federal
    publishes them; a remainder below 2 gives 0. The alphanumeric CNPJ (IN RFB 2.229/2024,
    issued from July 2026) is not accepted here: it has letters, so `typed_digits` refuses it.
    """
    cnpj = typed_digits(value)
    if cnpj is None or len(cnpj) != 14 or cnpj == cnpj[0] * 14:
        raise ValidationError(_("Invalid CNPJ."), code="invalid_cnpj")
    for size in (12, 13):
        weights = [2, 3, 4, 5, 6, 7, 8, 9] * 2
        total = sum(int(d) * w for d, w in zip(reversed(cnpj[:size]), weights, strict=False))
        check = 0 if total % 11 < 2 else 11 - total % 11
        if check != int(cnpj[size]):
            raise ValidationError(_("Invalid CNPJ."), code="invalid_cnpj")
    return cnpj


def normalize_phone(value: str) -> str:
    """A Brazilian phone as DDD + number (10 or 11 ASCII digits), without +55."""
    phone = typed_digits(value) or ""
    if len(phone) in (12, 13) and phone.startswith("55"):
        phone = phone[2:]
    if len(phone) not in (10, 11) or phone[0] == "0":
        raise ValidationError(
            _("Invalid phone: use area code and number, e.g. (11) 91234-5678."),
            code="invalid_phone",
        )
    if len(phone) == 11 and phone[2] != "9":
        raise ValidationError(_("Invalid mobile number."), code="invalid_phone")
    return phone


def visible_text(value: str) -> str:
    """`value` in NFC without invisible characters, its white space made single spaces.

    NFC, not NFKC: a name keeps its letters as typed ("ﬁ", "ª"), only a decomposed "José"
    becomes the composed one, so both typings are one name to search.
    """
    text = unicodedata.normalize("NFC", value or "")
    return " ".join("".join(c for c in text if c.isspace() or not _invisible(c)).split())


def clean_name(value: str) -> str:
    """A person's name as typed, without invisible characters (see `visible_text`), or
    ValidationError when nothing visible is left or it has no letter ("123", "...")."""
    name = visible_text(value)
    if not name:
        raise ValidationError(_("Tell us the name you want to be called by."), code="required")
    if not any(unicodedata.category(c).startswith("L") for c in name):
        raise ValidationError(_("Type a name with at least one letter."), code="no_letter")
    return name


def format_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}" if len(cpf) == 11 else cpf


def mask_cpf(cpf: str) -> str:
    """Only the middle digits, as the LGPD-minded convention shows: ***.456.789-**."""
    return f"***.{cpf[3:6]}.{cpf[6:9]}-**" if len(cpf) == 11 else ""


def mask_phone(phone: str) -> str:
    return f"({phone[:2]}) *****-{phone[-4:]}" if len(phone) >= 10 else ""
