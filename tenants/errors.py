"""Domain errors: what a screen shows the user when an operation is refused."""

from __future__ import annotations


class DomainError(Exception):
    """An operation refused for a reason the user can act on; the message is for screens."""


class InvalidTransition(DomainError):
    """A state machine refused a move; names both states."""

    def __init__(self, message: str, current: str, target: str) -> None:
        self.current, self.target = current, target
        super().__init__(message)
