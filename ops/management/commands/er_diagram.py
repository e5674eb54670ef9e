"""Print the Mermaid ER diagram of the project's models (paste it into docs/models.md).

tests/test_ops_docs.py checks the document against the models, so a new model or foreign key
without its line in the diagram fails the suite.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models

PROJECT_APPS = (
    "tenants",
    "customers",
    "tickets",
    "payments",
    "equipment",
    "messaging",
    "fiscal",
    "totem",
    "ops",
    "api",
)
TYPES = {
    "AutoField": "int",
    "BigAutoField": "bigint",
    "BooleanField": "bool",
    "CharField": "string",
    "SlugField": "string",
    "EmailField": "string",
    "URLField": "string",
    "TextField": "text",
    "DateField": "date",
    "DateTimeField": "datetime",
    "TimeField": "time",
    "DecimalField": "decimal",
    "IntegerField": "int",
    "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int",
    "SmallIntegerField": "int",
    "BigIntegerField": "bigint",
    "JSONField": "json",
    "UUIDField": "uuid",
    "GenericIPAddressField": "inet",
    "ImageField": "file",
    "FileField": "file",
    "BinaryField": "bytes",
    "FloatField": "float",
    "DurationField": "interval",
}


def documented_models() -> list[type[models.Model]]:
    """Concrete models of the project's apps, without simple-history's Historical* copies."""
    found = []
    for label in PROJECT_APPS:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models():
            if model._meta.abstract or model._meta.proxy:
                continue
            if model.__name__.startswith("Historical") and hasattr(model, "history_id"):
                continue
            found.append(model)
    return found


def entity(model: type[models.Model]) -> str:
    return model._meta.object_name


def relationships(model_list) -> set[tuple[str, str, str, str]]:
    """(target, card, source, field): one per foreign key, one-to-one and many-to-many."""
    found = set()
    for model in model_list:
        for field in model._meta.get_fields(include_hidden=True):
            if (
                not field.is_relation
                or field.auto_created
                or not field.concrete
                and not field.many_to_many
            ):
                continue
            if field.many_to_many:
                if field.model is not model:
                    continue
                card = "}o--o{"
            elif field.one_to_one:
                card = "|o--o|" if field.null else "||--o|"
            elif field.many_to_one:
                card = "|o--o{" if field.null else "||--o{"
            else:
                continue
            found.add((entity(field.related_model), card, entity(model), field.name))
    return found


def render() -> str:
    model_list = sorted(documented_models(), key=lambda m: (m._meta.app_label, m.__name__))
    lines = ["erDiagram"]
    for target, card, source, name in sorted(relationships(model_list)):
        lines.append(f'    {target} {card} {source} : "{name}"')
    for model in model_list:
        lines.append(f"    {entity(model)} {{")
        for field in model._meta.concrete_fields:
            if field.is_relation:
                kind, name = "fk", field.attname
            else:
                kind, name = TYPES.get(field.get_internal_type(), "string"), field.name
            key = " PK" if field.primary_key else (" FK" if field.is_relation else "")
            lines.append(f"        {kind} {name}{key}")
        lines.append("    }")
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Print the Mermaid ER diagram of the models (for docs/models.md)."

    def handle(self, *args, **options) -> None:
        self.stdout.write(render(), ending="")
