"""simple-history's records, with the history row copied inside the database.

The library writes a history row by building a model instance of every tracked field and
compiling an INSERT of it, after each save: a sixth of the Python time of a sale and of a
call (bench, cost section). Here, after an insert or update, one precompiled
`INSERT … SELECT` copies the row just saved, in the same transaction, so the history holds
exactly what the database holds. Deletes, many-to-many tracking and models whose history has
columns of its own go the library's way, as does every row when someone listens to the
library's per-record signals (they carry the history instance this path never builds).
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections, router
from django.utils import timezone
from simple_history import models as simple_history
from simple_history.signals import post_create_historical_record, pre_create_historical_record

HISTORY_COLUMNS = ("history_date", "history_change_reason", "history_type", "history_user_id")
_statements: dict[type, str | None] = {}
_recorders: dict[type, HistoricalRecords] = {}


class HistoricalRecords(simple_history.HistoricalRecords):
    def finalize(self, sender, **kwargs) -> None:
        super().finalize(sender, **kwargs)
        if sender is self.cls:  # finalize hears every model's class_prepared
            _recorders[sender] = self

    def create_historical_record(self, instance, history_type, using=None) -> None:
        statement = self._copy_statement(type(instance)) if history_type != "-" else None
        if statement is None or self._signals_heard(type(instance)):
            super().create_historical_record(instance, history_type, using=using)
            return
        user = self.get_history_user(instance)
        reason = self.get_change_reason_for_object(instance, history_type, using)
        when = getattr(instance, "_history_date", None) or timezone.now()
        alias = using if self.use_base_model_db and using else router.db_for_write(type(instance))
        with connections[alias].cursor() as cursor:
            cursor.execute(
                f"{statement} = %s",
                [when, reason, history_type, getattr(user, "pk", None), instance.pk],
            )

    def _copy_statement(self, model) -> str | None:
        """The INSERT … SELECT of `model`'s history up to its primary key's condition, built
        once; None where it cannot serve."""
        if model not in _statements:
            _statements[model] = self._build_statement(model)
        return _statements[model]

    def _build_statement(self, model) -> str | None:
        if self.m2m_fields or self.user_id_field is not None:
            return None
        history = vars(model)[self.manager_name].model
        tracked = [field.column for field in self.fields_included(model)]
        own = {f.column for f in history._meta.concrete_fields} - {"history_id"}
        if own != {*tracked, *HISTORY_COLUMNS}:
            return None  # an option added columns this statement does not fill
        quote = connections[router.db_for_write(model)].ops.quote_name
        columns = ", ".join(quote(c) for c in tracked)
        return (
            f"INSERT INTO {quote(history._meta.db_table)} "
            f"({columns}, {', '.join(quote(c) for c in HISTORY_COLUMNS)}) "
            f"SELECT {columns}, %s, %s, %s, %s FROM {quote(model._meta.db_table)} "
            f"WHERE {quote(model._meta.pk.column)}"
        )

    def _signals_heard(self, model) -> bool:
        history = vars(model)[self.manager_name].model
        return pre_create_historical_record.has_listeners(
            history
        ) or post_create_historical_record.has_listeners(history)


def record_created(objs: list) -> None:
    """History rows ("+") of the rows `bulk_create` just wrote: it sends no save signal.

    One statement for them all, in the caller's transaction (simple-history's
    bulk_create_with_history builds a history instance per row first).
    """
    if not objs or not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return
    model = type(objs[0])
    recorder = _recorders[model]
    statement = recorder._copy_statement(model)
    user = recorder.get_history_user(objs[0])  # set on the objects, else the request's
    if statement is None or recorder._signals_heard(model):
        model.history.bulk_history_create(objs, default_user=user, default_change_reason=None)
        return
    marks = ", ".join(["%s"] * len(objs))
    params = [timezone.now(), None, "+", getattr(user, "pk", None), *(o.pk for o in objs)]
    with connections[router.db_for_write(model)].cursor() as cursor:
        cursor.execute(f"{statement} IN ({marks})", params)
