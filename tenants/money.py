"""Money as Brazilians read it."""

from __future__ import annotations

from decimal import Decimal


def brl(amount: Decimal | str | int | float) -> str:
    """`Decimal("1234.5")` → `"R$ 1.234,50"`, whatever the active locale or the machine's."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    whole, cents = f"{abs(value):,.2f}".split(".")
    return f"{sign}R$ {whole.replace(',', '.')},{cents}"
