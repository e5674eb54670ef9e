"""Brazilian document and phone rules: validate, normalise, mask."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


def digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def normalize_cpf(value: str) -> str:
    """The 11 digits of a valid CPF, or ValidationError. Accepts dots and dash."""
    cpf = digits(value)
    if len(cpf) != 11 or cpf == cpf[0] * 11:
        raise ValidationError(_("Invalid CPF."), code="invalid_cpf")
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(cpf[:size], range(size + 1, 1, -1), strict=True))
        check = (total * 10) % 11 % 10
        if check != int(cpf[size]):
            raise ValidationError(_("Invalid CPF."), code="invalid_cpf")
    return cpf


def normalize_phone(value: str) -> str:
    """A Brazilian phone as DDD + number (10 or 11 digits), without +55."""
    phone = digits(value)
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


def format_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}" if len(cpf) == 11 else cpf


def mask_cpf(cpf: str) -> str:
    """Only the middle digits, as the LGPD-minded convention shows: ***.456.789-**."""
    return f"***.{cpf[3:6]}.{cpf[6:9]}-**" if len(cpf) == 11 else ""


def mask_phone(phone: str) -> str:
    return f"({phone[:2]}) *****-{phone[-4:]}" if len(phone) >= 10 else ""
