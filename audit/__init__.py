"""Tamper-evident audit log.

The public API is ``record``, used everywhere::

    from audit import record
    record("invoice.finalized", actor=user, obj=invoice, request=request, number="A-1")

A service that changes many rows at once appends their events in one go, each
still its own link of the chain::

    record_many([AuditEntry("invoice.payment_recorded", invoice, {"amount": 100})], actor=user)

It is importable before the app registry is ready; the work happens in
``audit.services``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from django.db.models import Model
    from django.http import HttpRequest

    from audit.models import AuditEvent

SYSTEM: Final = "system"
"""The actor for what the platform does by itself (schedules, jobs, migrations)."""


class AuditEntry(NamedTuple):
    """One event of ``record_many``: what ``record`` takes besides the actor and request."""

    action: str
    obj: Model | None = None
    details: Mapping[str, Any] = {}


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


def record_many(
    entries: Iterable[AuditEntry], *, actor: Any, request: HttpRequest | None = None
) -> list[AuditEvent]:
    """Append one event per entry, in order, in the caller's transaction, under one chain
    lock and in a few round trips; see services.record_events."""
    from audit.services import record_events

    return record_events(entries, actor=actor, request=request)
