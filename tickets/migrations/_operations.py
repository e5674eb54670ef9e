"""Operations shared by this app's migrations (underscored: the loader skips it; kept stable)."""

from __future__ import annotations

from django.db import migrations, transaction


class ReplaceCheck(migrations.operations.base.Operation):
    """Put the check constraint `new` where `old` was (same name). On PostgreSQL the drop and
    the `NOT VALID` add hold the table's lock for a moment; the scan that validates it runs
    afterwards without blocking writes. Elsewhere (SQLite), the usual remove and add."""

    reversible = True

    def __init__(self, model_name: str, old, new) -> None:
        self.model_name, self.old, self.new = model_name, old, new

    def state_forwards(self, app_label, state):
        state.remove_constraint(app_label, self.model_name, self.old.name)
        state.add_constraint(app_label, self.model_name, self.new)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._replace(app_label, schema_editor, from_state, to_state, self.old, self.new)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._replace(app_label, schema_editor, from_state, to_state, self.new, self.old)

    def _replace(self, app_label, schema_editor, from_state, to_state, old, new):
        before = from_state.apps.get_model(app_label, self.model_name)
        after = to_state.apps.get_model(app_label, self.model_name)
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            with transaction.atomic(using=connection.alias):
                schema_editor.remove_constraint(before, old)
                # SQLite rebuilds the table from the model: the one that has `new`.
                schema_editor.add_constraint(after, new)
            return
        table = schema_editor.quote_name(after._meta.db_table)
        with transaction.atomic(using=connection.alias):
            schema_editor.execute(
                f"ALTER TABLE {table} DROP CONSTRAINT {schema_editor.quote_name(old.name)}"
            )
            schema_editor.execute(f"{new.create_sql(after, schema_editor)} NOT VALID")
        schema_editor.execute(
            f"ALTER TABLE {table} VALIDATE CONSTRAINT {schema_editor.quote_name(new.name)}"
        )

    def describe(self):
        return f"Replace check constraint {self.old.name} on {self.model_name}"
