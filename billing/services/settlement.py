"""After finalization: void, uncollectible, payment and refund amounts."""

from __future__ import annotations

from django.db import transaction

from audit import record
from billing.delivery.hooks import invoice_paid
from billing.exceptions import (
    AmountExceedsDue,
    InvalidStatusTransition,
    RefundExceedsPaid,
)
from billing.models import (
    Invoice,
)
from billing.money import Money
from billing.services._base import (
    Actor,
    Status,
    _lock_invoice,
    _money_of,
    _transition,
)


def void_invoice(invoice: Invoice, *, by: Actor, reason: str = "") -> Invoice:
    """Void an OPEN or UNCOLLECTIBLE invoice with nothing paid or credited on it."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.is_credit_note:
            raise InvalidStatusTransition("a credit note cannot be voided", field="kind")
        if locked.amount_paid or locked.amount_credited:
            raise InvalidStatusTransition(
                f"{locked} has payments or credit notes on it; refund or credit it instead",
                field="status",
            )
        previous = _transition(locked, Status.VOID)
        locked.save(update_fields=["status", "updated_at"])
        record("invoice.voided", actor=by, obj=locked, previous_status=previous, reason=reason)
    return locked


def mark_uncollectible(invoice: Invoice, *, by: Actor, reason: str = "") -> Invoice:
    """Mark an OPEN invoice uncollectible (bad debt); later payments still count."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.is_credit_note:
            raise InvalidStatusTransition("a credit note has nothing to collect", field="kind")
        previous = _transition(locked, Status.UNCOLLECTIBLE)
        locked.save(update_fields=["status", "updated_at"])
        record(
            "invoice.marked_uncollectible",
            actor=by,
            obj=locked,
            previous_status=previous,
            amount_due=locked.amount_due,
            reason=reason,
        )
    return locked


def _settle(invoice: Invoice) -> str:
    """PAID when nothing is due any more, back to OPEN when a refund reopens it; a newly
    paid invoice's receipt goes to the customer after commit."""
    previous = invoice.status
    if invoice.amount_due == 0:
        _transition(invoice, Status.PAID)
        if previous != Status.PAID and invoice.amount_paid > 0:
            invoice_paid(invoice)
    elif invoice.status == Status.PAID:
        _transition(invoice, Status.OPEN)
    return previous


def _move_amount_paid(
    locked: Invoice, change: int, action: str, *, by: Actor, reference: str
) -> None:
    """Apply a checked change to amount paid on a locked invoice, settle it, audit it."""
    locked.amount_paid += change
    previous = _settle(locked)
    locked.save(update_fields=["amount_paid", "status", "updated_at"])
    record(
        action,
        actor=by,
        obj=locked,
        amount=abs(change),
        currency=locked.currency,
        reference=reference,
        previous_status=previous,
        status=locked.status,
    )


def record_payment_amount(
    invoice: Invoice, *, amount: Money, by: Actor, reference: str = ""
) -> Invoice:
    """Add a received amount to an invoice, never beyond its amount due; PAID at zero due."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        minor = _money_of(locked, amount)
        if locked.is_credit_note or locked.status not in (Status.OPEN, Status.UNCOLLECTIBLE):
            raise InvalidStatusTransition(
                f"{locked} is {locked.status}; it takes no payment", field="status"
            )
        if minor > locked.amount_due:
            raise AmountExceedsDue(
                f"{amount} is more than the amount due {locked.due}", field="amount"
            )
        _move_amount_paid(locked, minor, "invoice.payment_recorded", by=by, reference=reference)
    return locked


def record_refund_amount(
    invoice: Invoice, *, amount: Money, by: Actor, reference: str = ""
) -> Invoice:
    """Take a refunded amount off what was paid, never more than was paid; PAID reopens."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        minor = _money_of(locked, amount)
        if minor > locked.amount_paid:
            raise RefundExceedsPaid(
                f"{amount} is more than was paid ({locked.money(locked.amount_paid)})",
                field="amount",
            )
        _move_amount_paid(locked, -minor, "invoice.refund_recorded", by=by, reference=reference)
    return locked
