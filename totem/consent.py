"""The privacy (LGPD) consent the kiosk asks for, and its version.

A ticket stores the version the customer agreed to (`Ticket.consent_version`). Change the
text → change the version, so each ticket points at the words its customer actually read.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

CONSENT_VERSION = "2026-12-v2"

CONSENT_TITLE = _("Privacy (LGPD)")
CONSENT_TEXT = [
    _(
        "We use your name to call you, and your CPF and phone (if you give them) only to find "
        "your ticket and payment if you need help."
    ),
    _(
        "If you give your CPF, we keep your name, CPF and phone as a customer record, to "
        "recognise you on your next visit and to keep your packages' sessions."
    ),
    _(
        "If you declare priority service, we keep only that your ticket is a priority — never "
        "the reason."
    ),
    _(
        "Your data is kept only as long as the law requires and then anonymised. You may ask "
        "the front desk to see, correct or delete it."
    ),
]
CONSENT_LABEL = _("I have read and agree to the use of my data as described.")
