"""PIX BR Code (EMV® QRCPS-MPM) built locally, for the static PIX that needs no provider.

Follows the Central Bank's "Manual de Padrões para Iniciação do Pix": each field is
`ID` + two-digit length + value; the last field is the CRC16-CCITT-FALSE of everything before
it, including its own "6304" header.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

import segno

GUI = "br.gov.bcb.pix"


def crc16(payload: str) -> str:
    """CRC16-CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR), 4 hex digits."""
    crc = 0xFFFF
    for byte in payload.encode("utf-8"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def field(tag: str, value: str) -> str:
    length = len(value.encode("utf-8"))
    if length > 99:
        raise ValueError(f"BR Code field {tag} is longer than 99 bytes")
    return f"{tag}{length:02d}{value}"


def plain(text: str, limit: int) -> str:
    """ASCII without accents, trimmed: bank apps reject or garble other characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(ascii_text.split())[:limit]


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
    """The copia-e-cola text of a static PIX for `key`, optionally with a fixed amount."""
    if not key.strip():
        raise ValueError("a PIX key is required")
    account = field("00", GUI) + field("01", key.strip())
    if info:
        account += field("02", plain(info, 40))
    payload = (
        field("00", "01")
        + field("26", account)
        + field("52", "0000")
        + field("53", "986")
        + (field("54", f"{amount:.2f}") if amount else "")
        + field("58", "BR")
        + field("59", plain(name, 25))
        + field("60", plain(city, 15))
        + field("62", field("05", clean_txid(txid)))
        + "6304"
    )
    return payload + crc16(payload)


def qr_svg(text: str, scale: int = 6) -> str:
    """An inline SVG QR code of `text` (the kiosk shows it; no image files, no network)."""
    return segno.make(text, error="m").svg_inline(scale=scale, border=2)
