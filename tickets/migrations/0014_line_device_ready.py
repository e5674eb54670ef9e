"""The database refuses to call a line onto a device that is not ready for a session.

Occupancy is the partial unique index `line_one_active_per_equipment`; readiness depends on
the device's row and on the time, which no index can hold, so it is a trigger on the lines'
table. It fires only when a line moves to `called` onto a device (or to another device),
reads that device's row — which the calling operation has locked (tickets.queue.lock_device)
or which a session ending elsewhere has just updated, either way the committed or own value —
and aborts with `device_not_ready` (tickets.queue._conflicts turns it into a sentence):

- the device is offline or in maintenance (its status);
- it is cooling down (`cooling_until` later than the statement's time);
- on PostgreSQL, the tenant's local time is inside the device's daily maintenance window
  (the same arithmetic as Equipment.maintenance_until). SQLite has no time zones; there the
  window is held by the check under the device's lock, which SQLite's single writer makes
  enough.
"""

from __future__ import annotations

from django.db import migrations

POSTGRESQL = [
    """
    CREATE FUNCTION line_device_ready() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        device RECORD;
        since numeric;
    BEGIN
        SELECT e.status, e.cooling_until, e.maintenance_starts, e.maintenance_minutes,
               t.timezone
          INTO device
          FROM equipment_equipment e JOIN tenants_tenant t ON t.id = e.tenant_id
         WHERE e.id = NEW.equipment_id;
        IF device.status <> 'online' THEN
            RAISE EXCEPTION 'device_not_ready: device % is %', NEW.equipment_id, device.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF device.cooling_until IS NOT NULL AND device.cooling_until > statement_timestamp() THEN
            RAISE EXCEPTION 'device_not_ready: device % is cooling down until %',
                NEW.equipment_id, device.cooling_until
                USING ERRCODE = 'check_violation';
        END IF;
        IF device.maintenance_starts IS NOT NULL AND device.maintenance_minutes > 0 THEN
            since := mod(
                mod(extract(epoch FROM (statement_timestamp() AT TIME ZONE device.timezone)::time
                                       - device.maintenance_starts)::numeric, 86400) + 86400,
                86400);
            IF since < device.maintenance_minutes * 60 THEN
                RAISE EXCEPTION 'device_not_ready: device % is in its maintenance window',
                    NEW.equipment_id
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        RETURN NEW;
    END
    $$;
    """,
    """
    CREATE TRIGGER line_device_ready
    BEFORE UPDATE OF status, equipment_id ON tickets_ticketservice
    FOR EACH ROW
    WHEN (NEW.status = 'called' AND NEW.equipment_id IS NOT NULL
          AND (OLD.status IS DISTINCT FROM NEW.status
               OR OLD.equipment_id IS DISTINCT FROM NEW.equipment_id))
    EXECUTE FUNCTION line_device_ready();
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS line_device_ready ON tickets_ticketservice;",
    "DROP FUNCTION IF EXISTS line_device_ready();",
]
# Django stores an aware datetime on SQLite as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]', which
# compares as text with strftime's UTC '%Y-%m-%d %H:%M:%f'.
SQLITE = [
    """
    CREATE TRIGGER line_device_ready
    BEFORE UPDATE OF status, equipment_id ON tickets_ticketservice
    FOR EACH ROW
    WHEN NEW.status = 'called' AND NEW.equipment_id IS NOT NULL
         AND (OLD.status IS NOT NEW.status OR OLD.equipment_id IS NOT NEW.equipment_id)
    BEGIN
        SELECT RAISE(ABORT, 'device_not_ready')
          FROM equipment_equipment e
         WHERE e.id = NEW.equipment_id
           AND (e.status <> 'online'
                OR (e.cooling_until IS NOT NULL
                    AND e.cooling_until > strftime('%Y-%m-%d %H:%M:%f', 'now')));
    END;
    """,
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS line_device_ready;"]


def forwards(apps, schema_editor) -> None:
    statements = POSTGRESQL if schema_editor.connection.vendor == "postgresql" else SQLITE
    for sql in statements:
        schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor) -> None:
    statements = (
        POSTGRESQL_DROP if schema_editor.connection.vendor == "postgresql" else SQLITE_DROP
    )
    for sql in statements:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0013_session_timer_and_cooldown"),
        ("equipment", "0005_device_sessions_and_maintenance"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
