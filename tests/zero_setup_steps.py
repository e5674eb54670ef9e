"""Steps of tests/test_zero_setup_browser.py, run by `python -m tests.zero_setup_steps` in a
process of its own on the zero-setup database (SQLite, no Redis): the test process is
configured for the suite's database and cannot reach that one. It reads one step a line on
its standard input and answers each with a line of JSON.

Changes made here happen in another process than Daphne's, so their own events reach no
screen: the test only watches the events that Daphne's spooler and worker raise.

    setup          migrate, seed the demo studio, a pairing code for its TV
    sell           a paid ticket for Crioterapia, its print job due only when released
    release NUMBER the ticket's print job is due now: the spooler prints it
    late NUMBER    its call is past the no-show timeout, and the expiry job due now
    times NUMBER   when it entered the queue and when it became a no-show (epoch ms)
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from io import StringIO


def setup() -> dict:
    from django.core.management import call_command

    from equipment.models import Equipment, Kind
    from tenants.models import Tenant
    from tickets.models import Service
    from totem.models import PairingCode

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="demo")
    display = Equipment.objects.get(tenant=tenant, kind=Kind.DISPLAY)
    return {
        "display_code": PairingCode.objects.create(tenant=tenant, equipment=display).code,
        "cryo": Service.objects.get(tenant=tenant, prefix="C").pk,
    }


def sell() -> dict:
    from django.db import transaction
    from django.utils import timezone

    from equipment.models import PrintJob
    from tenants.models import Tenant
    from tickets.issuing import create_ticket
    from tickets.models import Service, Ticket
    from tickets.printing import mark_paid

    tenant = Tenant.objects.get(slug="demo")
    cryo = Service.objects.get(tenant=tenant, prefix="C")
    ticket = create_ticket(
        tenant, service_ids=[cryo.pk], customer_name="Maria Souza", consent_version="2026-01"
    )
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        mark_paid(ticket)
        # Held back until the test's screens are open (as a retry's backoff holds a job).
        PrintJob.objects.filter(ticket=ticket).update(
            next_attempt_at=timezone.now() + timedelta(minutes=10)
        )
    return {"number": ticket.number, "token": ticket.token, "status": ticket.status}


def release(number: str) -> dict:
    from django.utils import timezone

    from equipment.models import PrintJob

    due = PrintJob.objects.filter(ticket__tenant__slug="demo", ticket__number=number)
    return {"jobs": due.update(next_attempt_at=timezone.now())}


def late(number: str) -> dict:
    from django.utils import timezone

    from ops.models import ScheduledJob
    from tenants.models import Tenant
    from tickets.models import LineStatus, TicketLine

    tenant = Tenant.objects.get(slug="demo")
    called = TicketLine.objects.filter(
        ticket__tenant=tenant, ticket__number=number, status=LineStatus.CALLED
    )
    past = timezone.now() - timedelta(minutes=tenant.no_show_timeout_minutes + 1)
    lines = called.update(called_at=past)
    ScheduledJob.objects.filter(name="expire_tickets").update(due_at=timezone.now())
    return {"lines": lines}


def times(number: str) -> dict:
    from tickets.models import Ticket

    ticket = Ticket.objects.get(tenant__slug="demo", number=number)
    line = ticket.lines.get()

    def ms(moment) -> int | None:
        return int(moment.timestamp() * 1000) if moment else None

    return {"queued_at": ms(ticket.queued_at), "no_show_at": ms(line.no_show_at)}


STEPS = {"setup": setup, "sell": sell, "release": release, "late": late, "times": times}

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    # One process for every step: Django starts once. Each line read is a step and its
    # arguments; each answer is one line of JSON.
    for line in sys.stdin:
        step, *args = line.split()
        print(json.dumps(STEPS[step](*args)), flush=True)
