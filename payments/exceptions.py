"""The payments app's errors: one hierarchy, each naming the field or rule it concerns."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base of every payments error. ``field`` names the input at fault ('' for none)."""

    field: str = ""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        if field:
            self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message
