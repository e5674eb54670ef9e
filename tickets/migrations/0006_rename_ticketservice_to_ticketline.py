"""TicketService is renamed TicketLine, the word the code speaks ("a ticket's lines").

State only: the tables keep their names (tickets_ticketservice and its history), so nothing
is copied or locked; the content types are renamed so admin log entries and permissions
follow the model.
"""

from django.db import migrations


def rename_content_types(apps, schema_editor, old="ticketservice", new="ticketline"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for prefix in ("", "historical"):
        if not ContentType.objects.filter(app_label="tickets", model=prefix + new).exists():
            ContentType.objects.filter(app_label="tickets", model=prefix + old).update(
                model=prefix + new
            )


def restore_content_types(apps, schema_editor):
    rename_content_types(apps, schema_editor, old="ticketline", new="ticketservice")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("tickets", "0005_service_measured_duration"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameModel("TicketService", "TicketLine"),
                migrations.AlterModelTable("TicketLine", "tickets_ticketservice"),
                migrations.RenameModel("HistoricalTicketService", "HistoricalTicketLine"),
                migrations.AlterModelTable(
                    "HistoricalTicketLine", "tickets_historicalticketservice"
                ),
            ],
        ),
        migrations.RunPython(rename_content_types, restore_content_types),
    ]
