"""Errors of the incident tooling; each names the field or rule it concerns."""

from __future__ import annotations

from audit.exceptions import AuditError


class IncidentError(AuditError):
    """Base of every incident error. ``field`` names the input at fault ('' for none)."""

    field: str = ""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        if field:
            self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class IncidentRefused(IncidentError):
    """The change is not allowed: no permission, a status move the lifecycle forbids, a
    missing note, or bad input (``field`` names it)."""


class ContainmentRefused(IncidentError):
    """A containment action was refused: no permission, no fresh second factor, or what it
    acts on is not there (``field`` names it). Nothing was changed."""
