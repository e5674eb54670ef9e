"""Stored CPFs, phones and lines' customer keys in ASCII digits; names without invisible
characters.

Before this, a CPF typed in Arabic-Indic or fullwidth digits was stored as typed, so LGPD
export and erasure, the one-customer-per-service rule and admin search, which all compare
with the ASCII CPF, missed it. The history tables are normalised too: erasure looks a CPF up
in them, and a history row is a record of what was stored, which is now the canonical value.

Safe on a large table: only rows that can change are read (a regex both PostgreSQL and
SQLite answer: a CPF or phone with anything but ASCII digits, a name or key with anything but
printable ASCII), in batches by primary key, each batch in its own short transaction (the
migration is not atomic, so kiosks never wait on a lock held for the whole run). Each row is
updated only if still as it was read, so a row anonymised meanwhile stays anonymised; a value
the rules cannot make canonical is left as it was. Running it again finds nothing to do;
reversing it is a no-op.

A name left empty once its invisible characters go becomes NAMELESS rather than staying as
typed (a lone bidi override would still reorder the operator's row) or blank (an empty name
is what retention writes when it anonymises, and leaves the operator nothing to call).
"""

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, migrations, transaction
from django.db.models import Q

# The rules of today, not a copy: this migration makes stored rows what the kiosk stores now.
from tenants.br import normalize_cpf, normalize_phone, visible_text

BATCH = 500
NOT_ASCII_DIGITS = r"[^0-9]"
NOT_PRINTABLE_ASCII = r"[^ -~]"
NAMELESS = "Cliente"


def _or_as_is(normalise: Callable[[str], str]) -> Callable[[str], str]:
    def canonical(value: str) -> str:
        try:
            return normalise(value)
        except ValidationError:
            return value

    return canonical


def _name(value: str) -> str:
    return visible_text(value)[:80] or (NAMELESS if value else value)


CPF = (NOT_ASCII_DIGITS, _or_as_is(normalize_cpf))
PHONE = (NOT_ASCII_DIGITS, _or_as_is(normalize_phone))
NAME = (NOT_PRINTABLE_ASCII, _name)
# A line's key is the CPF or the ticket's token (ASCII): only a CPF typed in other digits
# holds anything else.
KEY = (NOT_PRINTABLE_ASCII, _or_as_is(normalize_cpf))


def normalise_rows(model, fields: dict[str, tuple[str, Callable[[str], str]]]) -> int:
    """Rewrite `fields` of the rows of `model` that need it; returns how many rows changed."""
    needs = Q()
    for name, (pattern, _canonical) in fields.items():
        needs |= Q(**{f"{name}__regex": pattern})
    changed, last = 0, None
    while True:
        rows = model.objects.filter(needs)
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = list(rows.order_by("pk").values("pk", *fields)[:BATCH])
        if not batch:
            return changed
        last = batch[-1]["pk"]
        with transaction.atomic():
            for row in batch:
                changes = {name: canonical(row[name]) for name, (_p, canonical) in fields.items()}
                changes = {name: value for name, value in changes.items() if value != row[name]}
                if not changes:
                    continue
                seen = {name: row[name] for name in changes}
                try:
                    with transaction.atomic():
                        changed += model.objects.filter(pk=row["pk"], **seen).update(**changes)
                except IntegrityError:
                    # Only "one active line per customer and service" can refuse: the same
                    # customer is in the same service twice at once, typed once in each
                    # script, the duplicate this change ends. That line keeps its key until
                    # it ends; erasure finds it by its ticket anyway.
                    pass


def normalise(apps, schema_editor) -> None:
    ticket = {"customer_cpf": CPF, "customer_phone": PHONE, "customer_name": NAME}
    normalise_rows(apps.get_model("tickets", "Ticket"), ticket)
    normalise_rows(apps.get_model("tickets", "HistoricalTicket"), ticket)
    normalise_rows(apps.get_model("tickets", "TicketLine"), {"customer_key": KEY})
    normalise_rows(apps.get_model("tickets", "HistoricalTicketLine"), {"customer_key": KEY})


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("tickets", "0006_rename_ticketservice_to_ticketline"),
    ]

    operations = [
        migrations.RunPython(normalise, migrations.RunPython.noop),
    ]
