"""Background jobs of the security app (django-q2): thin wrappers around services."""

from __future__ import annotations

from audit import SYSTEM
from security.services import disable_dormant_staff


def disable_dormant_staff_accounts() -> int:
    """The daily job: deactivate staff accounts unused for 90 days; returns how many."""
    return disable_dormant_staff(by=SYSTEM)
