"""The event log: ``emit`` writes an ``Event`` and one delivery per subscribed endpoint.

Services call it inside their transaction, after their change: a rollback takes the
event and its deliveries away, and the first POST of each delivery is queued only
when the transaction commits (``dispatch.enqueue``). The snapshot is built by the
functions below from fields that may leave the platform: ids, numbers, amounts,
states, dates; a card's brand and last four at most. Never a card number, a token of
the vault, a secret, a name or an address.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.webhooks import dispatch
from billing.webhooks.models import Event, WebhookDelivery, WebhookEndpoint
from db.compiled import compiled, insert

# Every event Tillit emits, and the service that emits it (docs/webhooks.md).
EVENT_TYPES: dict[str, str] = {
    "invoice.finalized": "an invoice or credit note was finalized (numbered, frozen)",
    "invoice.paid": "nothing is due on an invoice any more (payments, bank transfers)",
    "invoice.voided": "an open invoice was voided",
    "invoice.credited": "a credit note was issued against an invoice",
    "payment.succeeded": "a card payment was captured and recorded on its invoice",
    "payment.failed": "a card payment failed (declined, blocked, declined after review)",
    "payment.refunded": "a refund of a payment completed (in full or in part)",
    "payment.held_for_review": "the risk rules held a card payment for a fraud analyst",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@compiled()
def _subscriptions() -> QuerySet[Any]:
    # Compiled once and prepared: it runs in every card payment's transaction.
    return WebhookEndpoint.objects.filter(active=True).values("pk", "events")


def _subscribed(event_type: str) -> list[int]:
    """The active endpoints that chose this event type (a handful: read them all)."""
    return [row["pk"] for row in _subscriptions.fetch() if event_type in (row["events"] or ())]


def _deliver(event: Event, endpoints: list[int]) -> None:
    for pk in endpoints:
        delivery = insert(
            WebhookDelivery(
                public_id=new_id("whd"),
                event=event,
                endpoint_id=pk,
                created_at=event.created_at,
                next_attempt_at=event.created_at,
            )
        )
        dispatch.enqueue(delivery.pk)


def emit(
    event_type: str, *, customer: Customer | int | None, data: Mapping[str, Any], object_id: str
) -> Event | None:
    """Record the event and a delivery to each active endpoint that chose its type; the
    deliveries are posted after the caller's transaction commits (nothing on rollback).
    None when WEBHOOKS_ENABLED is off."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not settings.WEBHOOKS_ENABLED:
        return None
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    # Two prepared statements (the INSERT and the subscriptions) when no endpoint listens.
    event = insert(
        Event(
            public_id=new_id("evt"),
            type=event_type,
            created_at=timezone.now(),
            customer_id=customer_id,
            object_id=str(object_id)[:60],
            data=dict(data),
        )
    )
    _deliver(event, _subscribed(event_type))
    return event


def emit_invoices(event_type: str, invoices: Sequence[Invoice]) -> list[Event]:
    """``emit_invoice`` for many invoices at once (a bank file's batch): the same rows in
    a constant number of statements."""
    if len(invoices) <= 1 or not settings.WEBHOOKS_ENABLED:
        return [e for i in invoices if (e := emit_invoice(event_type, i)) is not None]
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(
            public_id=new_id("evt"),
            type=event_type,
            created_at=now,
            customer_id=invoice.customer_id,
            object_id=f"invoice_{invoice.pk}",
            data=invoice_snapshot(invoice),
        )
        for invoice in invoices
    )
    endpoints = _subscribed(event_type)
    if endpoints:
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                public_id=new_id("whd"),
                event=event,
                endpoint_id=pk,
                created_at=now,
                next_attempt_at=now,
            )
            for event in events
            for pk in endpoints
        )
        for delivery in deliveries:
            dispatch.enqueue(delivery.pk)
    return events


def _date(value: Any) -> str | None:
    return value.isoformat() if value else None


def invoice_snapshot(invoice: Invoice) -> dict[str, Any]:
    """What an integration may know of an invoice (or credit note)."""
    return {
        "object": "invoice",
        "id": invoice.pk,
        "number": invoice.display_number,
        "kind": invoice.kind,
        "status": invoice.status,
        "customer": invoice.customer_id,
        "currency": invoice.currency,
        "net_total": invoice.net_total,
        "vat_total": invoice.vat_total,
        "gross_total": invoice.gross_total,
        "amount_paid": invoice.amount_paid,
        "amount_credited": invoice.amount_credited,
        "amount_due": invoice.amount_due,
        "issue_date": _date(invoice.issue_date),
        "due_date": _date(invoice.due_date),
        "credited_invoice": invoice.credited_invoice_id,
        "ocr_reference": invoice.ocr_reference,
    }


def emit_invoice(event_type: str, invoice: Invoice, **extra: Any) -> Event | None:
    """``emit`` with the invoice's snapshot (and ``extra`` facts, e.g. the credit note)."""
    return emit(
        event_type,
        customer=invoice.customer_id,
        data={**invoice_snapshot(invoice), **extra},
        object_id=f"invoice_{invoice.pk}",
    )


def payment_snapshot(payment: Any) -> dict[str, Any]:
    """What an integration may know of a payment (payments' ``Payment``; billing reads
    its fields without importing payments): never the card's number or token."""
    return {
        "object": "payment",
        "id": payment.pk,
        "invoice": payment.invoice_id,
        "status": payment.status,
        "method": payment.method,
        "amount": payment.amount,
        "refunded_amount": payment.refunded_amount,
        "currency": payment.currency,
        "card_brand": payment.card_brand or None,
        "card_last4": payment.card_last4 or None,
        "failure_code": payment.failure_code or None,
        "created": _date(payment.created_at),
    }


def emit_payment(event_type: str, payment: Any, *, customer: int, **extra: Any) -> Event | None:
    """``emit`` with the payment's snapshot; ``customer`` is its invoice's customer id."""
    return emit(
        event_type,
        customer=customer,
        data={**payment_snapshot(payment), **extra},
        object_id=f"payment_{payment.pk}",
    )
