"""Tamper-evident audit log.

The public API is one function, used everywhere::

    from audit import record
    record("invoice.finalized", actor=user, obj=invoice, request=request, number="A-1")

It is importable before the app registry is ready; the work happens in
``audit.services``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import Model
    from django.http import HttpRequest

    from audit.models import AuditEvent

SYSTEM = "system"
"""The actor for what the platform does by itself (schedules, jobs, migrations)."""


def record(
    action: str,
    *,
    actor: Any,
    obj: Model | None = None,
    request: HttpRequest | None = None,
    **details: Any,
) -> AuditEvent:
    """Append one event to the chain in the caller's transaction; see services.record_event."""
    from audit.services import record_event

    return record_event(action, actor=actor, obj=obj, request=request, details=details)
