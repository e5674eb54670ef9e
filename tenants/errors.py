"""Domain errors: what a screen shows the user when an operation is refused."""

from __future__ import annotations

from django.db.models import TextChoices


class DomainError(Exception):
    """An operation refused for a reason the user can act on; the message is for screens."""


class InvalidTransition(DomainError):
    """A state machine refused a move; names both states."""

    def __init__(self, message: str, current: str, target: str) -> None:
        self.current, self.target = current, target
        super().__init__(message)

    @classmethod
    def between(
        cls, states: type[TextChoices], current: str, target: str, message: str, **names: object
    ) -> InvalidTransition:
        """The refusal, its message naming both states as users read them (`states`' labels)
        through `%(current)s` and `%(target)s`, beside the object's own `names`."""
        labels = {"current": states(current).label, "target": states(target).label}
        return cls(message % {**names, **labels}, current, target)
