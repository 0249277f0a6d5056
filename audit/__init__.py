"""Tamper-evident audit log.

This module is audit's public API; nothing outside ``audit/`` imports
``audit.services`` or ``audit.chain`` (an import-linter contract says so). ``record``
is used everywhere::

    from audit import record
    record("invoice.finalized", actor=user, obj=invoice, request=request, number="A-1")

A service that changes many rows at once appends their events in one go, each
still its own link of the chain::

    record_many([AuditEntry("invoice.payment_recorded", invoice, {"amount": 100})], actor=user)

A hot path that writes one row with hand-built SQL appends its event in the same
statement (one round trip; docs/audit.md, "One statement")::

    started = pending_event("payment.started", actor=user, obj=payment, amount=100)
    payment_id = write_with_event(*insert_sql(payment), started)

It is importable before the app registry is ready; the work happens in
``audit.services``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.db.models import Model
    from django.http import HttpRequest

    from audit.models import AuditEvent
    from audit.services import PreparedEvent as PendingEvent

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


def pending_event(
    action: str,
    *,
    actor: Any,
    obj: Model | None = None,
    request: HttpRequest | None = None,
    **details: Any,
) -> PendingEvent:
    """An event checked now (``InvalidAuditEvent`` names what is wrong, nothing is written)
    and appended later by ``write_with_event``. ``obj`` not yet saved: the event is about
    the row the write inserts."""
    from audit.services import pending_event as prepare

    return prepare(action, actor=actor, obj=obj, request=request, details=details)


def write_with_event(
    sql: str,
    params: Sequence[Any],
    event: PendingEvent,
    *,
    then: str = "",
    then_params: Sequence[Any] = (),
) -> Any:
    """Run ``sql`` and append ``event`` for the row it wrote, in the caller's transaction:
    on PostgreSQL one statement, a row and its event in one round trip.

    ``sql`` is one INSERT, UPDATE or DELETE (its values parameters) ending in
    ``RETURNING`` one column: the written row's integer id (the event's object id is
    hashed by the database as the digits it is). ``then`` (PostgreSQL only) adds
    further data-modifying CTEs that may read ``w``, the written row (e.g. ``k AS
    (INSERT ... SELECT ..., w.id FROM w)``). The event is about the row's id when it was
    pending for an unsaved object, else about its own object. Returns the first
    written row's value, or None when ``sql`` wrote no row: then nothing is appended.
    On SQLite the write and the append are two statements in one transaction.
    """
    from audit.services import write_with_event as write

    return write(sql, params, event, then=then, then_params=then_params)


def __getattr__(name: str) -> Any:
    # ``PendingEvent`` for annotations at run time, without importing the models early.
    if name == "PendingEvent":
        from audit.services import PreparedEvent

        return PreparedEvent
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
