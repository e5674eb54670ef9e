"""Secrets kept encrypted in the database: providers' tokens, signing secrets, SMTP passwords.

Fernet (AES with an HMAC) from `cryptography`, which Daphne's TLS stack already installs;
writing our own cipher would be the wrong kind of code to own. Keys come from
FIELD_ENCRYPTION_KEYS (comma-separated; the first encrypts, all decrypt, so a key can be
rotated), or are derived from SECRET_KEY when none is set.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


def derived_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(f"totem-fields:{secret}".encode()).digest())


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys] or [Fernet(derived_key(secret_key))])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(text: str) -> str:
    return PREFIX + _current().encrypt(text.encode()).decode()


def decrypt(stored: str) -> str:
    """Plain text written before encryption came in passes through; it is encrypted when
    its row is next saved."""
    if not stored.startswith(PREFIX):
        return stored
    return _current().decrypt(stored[len(PREFIX) :].encode()).decode()


class EncryptedCharField(models.CharField):
    """A CharField whose value is encrypted at rest (a text column: ciphertext is longer).

    Not for lookups: the same value encrypts differently every time."""

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value, expression, connection):
        return value if value in (None, "") else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value if value in (None, "") else encrypt(value)
