"""Signed webhooks and the event log (docs/webhooks.md).

Public API for the services of billing and payments, called inside their transaction:

    from billing.webhooks import emit_invoice, emit_payment
    emit_invoice("invoice.paid", invoice)

``emit(event_type, *, customer, data, object_id)`` is the general form. Each writes an
``Event`` and one delivery per subscribed endpoint, posted after the commit.
"""

from __future__ import annotations

from typing import Any


def emit(event_type: str, *, customer: Any, data: Any, object_id: str) -> Any:
    """Record an event (see ``billing.webhooks.events.emit``)."""
    from billing.webhooks.events import emit as _emit

    return _emit(event_type, customer=customer, data=data, object_id=object_id)


def emit_invoice(event_type: str, invoice: Any, **extra: Any) -> Any:
    """Record an invoice's event with its snapshot (``events.emit_invoice``)."""
    from billing.webhooks.events import emit_invoice as _emit_invoice

    return _emit_invoice(event_type, invoice, **extra)


def emit_payment(event_type: str, payment: Any, *, customer: int, **extra: Any) -> Any:
    """Record a payment's event with its snapshot (``events.emit_payment``)."""
    from billing.webhooks.events import emit_payment as _emit_payment

    return _emit_payment(event_type, payment, customer=customer, **extra)


def emit_invoices(event_type: str, invoices: Any) -> Any:
    """Record the same event for many invoices at once (``events.emit_invoices``)."""
    from billing.webhooks.events import emit_invoices as _emit_invoices

    return _emit_invoices(event_type, invoices)
