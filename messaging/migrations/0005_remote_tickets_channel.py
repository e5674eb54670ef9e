from django.db import migrations


def mark_phone_tickets(apps, schema_editor):
    """Tickets sold from the phone before tickets had a channel: their RemoteTicket says so."""
    Ticket = apps.get_model("tickets", "Ticket")
    Ticket.objects.filter(remote__isnull=False).update(channel="phone")


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0004_customer_on_the_way"),
        ("tickets", "0020_ticket_channel"),
    ]

    operations = [migrations.RunPython(mark_phone_tickets, migrations.RunPython.noop)]
