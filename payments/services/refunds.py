"""Refunds: requested by a payments operator (permission, step-up, a reason and what the
refund is for), started automatically for a capture the invoice could not take
(compensation) or made by the bank (a reversed bank transfer). Every one is started by
``open_refund`` (the refund and its audit event, in the caller's transaction), sent to the
gateway outside any transaction (``send_refund``) and completed once (``complete_refund``:
the payment's refunded amount and the invoice, through billing's services)."""

from __future__ import annotations

import logging
import secrets
import unicodedata
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from billing.money import Money
from billing.services import record_refund_reopening, record_refund_with_credit_note
from billing.webhooks import emit_payment
from payments.exceptions import InvalidPayment, RefundRefused
from payments.gateways import GatewayError, GatewayTimeout, get_gateway
from payments.models import Payment, Refund
from payments.services.checks import shown
from payments.step_up import require_step_up
from security.actors import Actor, Person, user_of

Status = Payment.Status
logger = logging.getLogger(__name__)


REFUND_PERMISSION = "payments.refund_payment"


def refund_payment(
    payment: Payment,
    *,
    amount: Money,
    reason: str,
    purpose: str,
    by: Person,
    request: HttpRequest | None,
) -> Refund:
    """Refund part or all of a captured payment: permission, step-up, a reason and what the
    refund is for; never more than is left of it.

    ``purpose`` (``Refund.Purpose``) decides the invoice's fate, through billing's services,
    once the money is back: ``credit_note`` (goods returned or price reduced: a credit note
    for the amount, the invoice stays settled, the customer gets a refund receipt) or
    ``reopen`` (the payment was reversed: the amount is owed again and the customer is
    told). Without one the refund is refused (``purpose``) and nothing changes.
    """
    if not (hasattr(by, "has_perm") and by.has_perm(REFUND_PERMISSION)):
        raise RefundRefused(_("refunding needs the payments operator's permission"), field="user")
    return checked_refund(
        payment,
        amount=amount,
        reason=reason,
        purpose=purpose,
        event="payment.refund_requested",
        by=by,
        request=request,
    )


def checked_refund(
    payment: Payment,
    *,
    amount: Money,
    reason: str,
    purpose: str,
    event: str,
    by: Person,
    request: HttpRequest | None,
) -> Refund:
    """The refund's checks after the caller's permission (step-up, a reason without control
    characters, a purpose, the amount left), then open and send it. ``refund_payment``
    (the payments operator) and ``refund_as_fraud`` (the fraud analyst) share it."""
    require_step_up(request, by)
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RefundRefused(_("give the reason for the refund"), field="reason")
    if any(unicodedata.category(char) in ("Cc", "Cs") and char not in "\r\n\t" for char in reason):
        # Refused now, not once the money is back: a credit note prints the reason.
        raise RefundRefused(_("the reason must not contain control characters"), field="reason")
    if purpose not in Refund.Purpose.values:
        raise RefundRefused(
            _(
                "say what the refund is for: with a credit note (the invoice stays paid) or"
                " reopening the invoice (the amount is owed again)"
            ),
            field="purpose",
        )
    with transaction.atomic():
        locked = Payment.objects.select_for_update().select_related("invoice").get(pk=payment.pk)
        if not isinstance(amount, Money) or amount.currency != locked.currency:
            raise InvalidPayment(
                _("the refund must be in %(currency)s") % {"currency": locked.currency},
                field="currency",
            )
        if amount.amount <= 0:
            raise InvalidPayment(_("the refund must be more than zero"), field="amount")
        in_flight = (
            locked.refunds.filter(status=Refund.Status.PENDING).aggregate(t=Sum("amount"))["t"] or 0
        )
        left = locked.refundable - in_flight
        if amount.amount > left:
            raise RefundRefused(
                _("%(amount)s is more than is left to refund (%(left)s)")
                % {"amount": shown(amount), "left": shown(Money(max(left, 0), amount.currency))},
                field="amount",
            )
        refund = open_refund(
            locked,
            amount=amount,
            reason=reason,
            purpose=purpose,
            event=event,
            by=by,
            request=request,
        )
    return send_refund(refund, by=by)


def open_refund(
    payment: Payment,
    *,
    amount: Money,
    reason: str,
    event: str,
    by: Actor,
    request: HttpRequest | None = None,
    purpose: str = "",
    compensation: bool = False,
    idempotency_key: str = "",
    **details: Any,
) -> Refund:
    """Start a refund of ``payment`` (locked by the caller, in its transaction): the PENDING
    refund and its audit event ``event`` (with the refund's id, amount, currency, reason and
    purpose, and ``details``), together. The one way a refund is created; ``send_refund`` (or
    ``complete_refund``, for money already back) follows once the caller commits.

    ``purpose`` (``Refund.Purpose``) is what becomes of the invoice; a ``compensation``
    refund gives back a capture the invoice could not take and leaves the invoice alone.
    """
    refund = Refund.objects.create(
        payment=payment,
        amount=amount.amount,
        currency=amount.currency,
        reason=reason[:500],
        purpose=purpose,
        compensation=compensation,
        idempotency_key=idempotency_key or "ref_" + secrets.token_hex(16),
        created_by=user_of(by),
    )
    record(
        event,
        actor=by,
        obj=payment,
        request=request,
        refund_id=refund.pk,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        purpose=refund.purpose,
        **details,
    )
    return refund


def send_refund(refund: Refund, *, by: Actor) -> Refund:
    """Ask the gateway for the refund (outside any transaction), then record the answer."""
    payment = refund.payment
    if payment.method == Payment.Method.BANK_TRANSFER:
        # Money that came by bank goes back by bank: the operator pays it out.
        return complete_refund(refund, reference="manual", by=by)
    try:
        result = get_gateway().refund(
            idempotency_key=refund.idempotency_key,
            charge_reference=payment.gateway_reference,
            amount=Money(refund.amount, refund.currency),
        )
    except GatewayTimeout:
        logger.warning("refund %s: no answer from the gateway; the job retries it", refund.pk)
        return refund
    except GatewayError as exc:
        with transaction.atomic():
            locked = Refund.objects.select_for_update().get(pk=refund.pk)
            if locked.status == Refund.Status.PENDING:
                locked.status = Refund.Status.FAILED
                locked.failure_message = exc.message[:300]
                locked.settled_at = timezone.now()
                locked.save(update_fields=["status", "failure_message", "settled_at"])
                record(
                    "payment.refund_failed",
                    actor=by,
                    obj=locked.payment,
                    refund_id=locked.pk,
                    amount=locked.amount,
                    message=locked.failure_message,
                )
        return locked
    return complete_refund(refund, reference=result.reference, by=by)


def complete_refund(refund: Refund, *, reference: str, by: Actor) -> Refund:
    """Record a refund the gateway (or the bank) made, once: the payment's refunded amount,
    and the invoice through billing's services as the refund's purpose says (a credit note,
    or the amount owed again). A compensation refund leaves the invoice alone."""
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status != Refund.Status.PENDING:
            return locked
        payment = (
            Payment.objects.select_for_update().select_related("invoice").get(pk=locked.payment_id)
        )
        locked.status = Refund.Status.SUCCEEDED
        locked.gateway_reference = reference
        locked.settled_at = timezone.now()
        locked.save(update_fields=["status", "gateway_reference", "settled_at"])
        if locked.compensation:
            record(
                "payment.compensated",
                actor=by,
                obj=payment,
                refund_id=locked.pk,
                amount=locked.amount,
                currency=locked.currency,
            )
            return locked
        payment.refunded_amount += locked.amount
        payment.status = (
            Status.REFUNDED
            if payment.refunded_amount == payment.amount
            else Status.PARTIALLY_REFUNDED
        )
        payment.save(update_fields=["refunded_amount", "status", "updated_at"])
        refunded: dict[str, Any] = {
            "amount": Money(locked.amount, locked.currency),
            "reason": locked.reason,
            "by": by,
            "reference": f"refund:{locked.pk}",
        }
        if locked.purpose == Refund.Purpose.CREDIT_NOTE:
            locked.credit_note = record_refund_with_credit_note(payment.invoice, **refunded)
            locked.save(update_fields=["credit_note"])
        else:
            record_refund_reopening(payment.invoice, **refunded)
        record(
            "payment.refunded",
            actor=by,
            obj=payment,
            refund_id=locked.pk,
            amount=locked.amount,
            currency=locked.currency,
            status=payment.status,
            purpose=locked.purpose,
            credit_note=locked.credit_note.display_number if locked.credit_note else "",
        )
        emit_payment("payment.refunded", payment, customer=payment.invoice.customer_id)
    return locked
