"""Stored static-PIX keys in the DICT's form: CPF and CNPJ digits only, a mobile as
+55 + DDD + number, an e-mail in lower case, a random key as a lower-case UUID.

Before this the key went into the BR Code as typed ("529.982.247-25", "(11) 91234-5678",
"Studio@Example.com"), and the payer's bank, which looks the key up as the DICT writes it,
found no such key. A key the rules cannot make canonical (a wrong check digit, a landline,
something of no type) is left as it was and logged without its value (it may be a CPF or a
phone): the kiosk stops offering static PIX for that studio (`static_pix_ready` checks the
key), and the admin shows the error on the next save. Merchant names and cities are not
changed (the code folds them when it is built); one that keeps no Latin letter is logged for
the same reason.

One row per tenant: read whole, each row updated only if its key is still as it was read.
The history table keeps what was stored then. Running it again finds nothing to do;
reversing it is a no-op.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import migrations

# The rules of today, not a copy: this migration makes stored keys what the admin stores now.
from payments.brcode import CITY_LIMIT, NAME_LIMIT, has_letter, normalize_pix_key, plain

log = logging.getLogger("payments.migrations")


def canonicalise(apps, schema_editor) -> None:
    settings = apps.get_model("payments", "PaymentSettings")
    for row in settings.objects.order_by("pk").values(
        "pk", "tenant_id", "pix_key", "merchant_name", "merchant_city"
    ):
        if row["pix_key"]:
            try:
                key = normalize_pix_key(row["pix_key"])
            except ValidationError as error:
                log.warning(
                    "payment settings #%s (tenant %s): the PIX key cannot be made canonical "
                    "(%s); static PIX is off until a manager saves a valid key in the admin",
                    row["pk"],
                    row["tenant_id"],
                    error.code,
                )
            else:
                if key != row["pix_key"]:
                    settings.objects.filter(pk=row["pk"], pix_key=row["pix_key"]).update(
                        pix_key=key
                    )
        for field, limit in (("merchant_name", NAME_LIMIT), ("merchant_city", CITY_LIMIT)):
            if row[field] and not has_letter(plain(row[field], limit)):
                log.warning(
                    "payment settings #%s (tenant %s): %s keeps no Latin letter for the BR "
                    "Code; static PIX is off until a manager corrects it in the admin",
                    row["pk"],
                    row["tenant_id"],
                    field,
                )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_encrypted_secrets"),
    ]

    operations = [
        migrations.RunPython(canonicalise, migrations.RunPython.noop),
    ]
