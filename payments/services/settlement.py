"""A reserved card payment's charge (step 2, outside any transaction) and settle (step 3,
one transaction): the gateway's answer recorded once. A capture goes to the invoice
through ``billing.services.record_payment_amount``; if the invoice can no longer take it
(voided or credited meanwhile), the charge is refunded at once (a compensation refund), so
no acquirer charge is left uncompensated. A lost answer leaves the payment UNKNOWN (still
holding its amount) until ``card_reconciliation`` asks the gateway by the same key."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit import SYSTEM, AuditEntry, record
from billing.exceptions import BillingError
from billing.services import record_payment_amount
from billing.webhooks import emit_payment
from payments.fraud.features.velocity import count_outcome
from payments.gateways import ChargeResult, GatewayError, GatewayTimeout, get_gateway
from payments.models import Payment, Refund
from payments.saved_cards import forget_unsaved_card
from payments.services.gateway_account import gateway_account_for
from payments.services.hot_statements import payment_locked, save_settled
from payments.services.refunds import open_refund, send_refund
from payments.vault.exceptions import KeysUnavailable, VaultError
from payments.vault.services import RevealedCard, report_key_fault, reveal_card
from security.actors import Actor

Status = Payment.Status


# What a payment charged later (a risk approval, a reconciliation) records when the vault's
# keys fail; the detail is in the audit event and the staff alert.
KEYS_UNAVAILABLE = "the vault's keys were unavailable (see the security alert); nothing was charged"


Revealed = RevealedCard | VaultError | None
"""A card revealed for a charge, the vault's refusal, or None (nothing to charge)."""


def reveal_for_charge(payment: Payment, *, account_id: int | None = None) -> Revealed:
    """Reveal the payment's card for the gateway account (audited, rate-limited), unless
    nothing is to be charged (blocked, or held for a fraud analyst). ``account_id``: the
    gateway account's id as the caller's transaction just read it, if it did."""
    if payment.is_final or payment.awaiting_risk_review:
        return None
    assert payment.payment_method is not None
    try:
        return reveal_card(
            payment.payment_method.token,
            # The payment's acquirer key names it: the reserve step reveals before the
            # payment's row (and id) exists.
            purpose=f"charge for payment {payment.idempotency_key}",
            by=gateway_account_for(account_id),
        )
    except VaultError as exc:
        return exc


def charge_payment(payment: Payment, *, by: Actor, card: Revealed = None) -> Payment:
    """Step 2 (outside any transaction): charge the card, revealed here unless the
    reserve step did (``card``)."""
    if payment.is_final or payment.awaiting_risk_review:
        return payment  # blocked, or held until a fraud analyst decides: nothing is charged
    gateway = get_gateway()
    if card is None:
        card = reveal_for_charge(payment)
    if isinstance(card, KeysUnavailable):
        report_key_fault(card, operation="reveal", by=by)
        return settle(payment, None, by=by, failure=("card_unavailable", KEYS_UNAVAILABLE))
    if isinstance(card, VaultError):
        return settle(payment, None, by=by, failure=("card_unavailable", card.message))
    assert card is not None
    try:
        result = gateway.authorize_capture(
            idempotency_key=payment.idempotency_key, amount=payment.money, card=card
        )
    except GatewayTimeout:
        return _mark_unknown(payment, by=by)
    except GatewayError as exc:
        return settle(payment, None, by=by, failure=("gateway_error", exc.message))
    finally:
        del card
    return settle(payment, result, by=by)


def record_failure(payment: Payment, *, by: Actor) -> None:
    """Audit ``payment.failed`` for a payment that has just failed (its failure code set)."""
    record(
        "payment.failed",
        actor=by,
        obj=payment,
        invoice_id=payment.invoice_id,
        amount=payment.amount,
        currency=payment.currency,
        code=payment.failure_code,
    )
    emit_payment("payment.failed", payment, customer=payment.invoice.customer_id)


def _mark_unknown(payment: Payment, *, by: Actor) -> Payment:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Status.PENDING:
            return locked
        locked.status = Status.UNKNOWN
        locked.save(update_fields=["status", "updated_at"])
        record(
            "payment.outcome_unknown",
            actor=by,
            obj=locked,
            invoice_id=locked.invoice_id,
            gateway=locked.gateway,
        )
    return locked


def settle(
    payment: Payment,
    result: ChargeResult | None,
    *,
    by: Actor,
    failure: tuple[str, str] | None = None,
) -> Payment:
    """Step 3: record the gateway's answer once; a capture the invoice cannot take is refunded.

    The commit waits for its WAL flush, as every commit does: the customer is told
    "paid" only once that fact survives a crash (docs/decisions.md, 28).
    """
    compensation: Refund | None = None
    succeeded: AuditEntry | None = None
    with transaction.atomic():
        locked = payment_locked.first(payment.pk)
        if locked.is_final:
            return locked  # settled already (a concurrent reconciliation)
        locked.settled_at = timezone.now()
        if result is not None and result.approved:
            locked.gateway_reference = result.reference
            try:
                # The invoice is locked with the payment (held=True): billing checks the
                # amount before it writes anything, so on a refusal this transaction goes
                # on to refund, with no savepoint to roll back to.
                record_payment_amount(
                    locked.invoice,
                    amount=locked.money,
                    by=by,
                    reference=f"payment:{locked.pk}",
                    held=True,
                )
            except BillingError as exc:
                locked.status = Status.FAILED
                locked.failure_code = "compensated"
                locked.failure_message = (
                    f"captured, but the invoice could not take it ({exc.message}); refunded"
                )[:300]
                compensation = open_refund(
                    locked,
                    amount=locked.money,
                    reason="automatic: the invoice could not take the captured amount",
                    compensation=True,
                    event="payment.compensation_started",
                    by=SYSTEM,
                    invoice_id=locked.invoice_id,
                    rule=exc.field,
                )
            else:
                locked.status = Status.SUCCEEDED
                succeeded = AuditEntry(
                    "payment.succeeded",
                    locked,
                    {
                        "invoice_id": locked.invoice_id,
                        "amount": locked.amount,
                        "currency": locked.currency,
                        "gateway_reference": locked.gateway_reference,
                    },
                )
                emit_payment("payment.succeeded", locked, customer=locked.invoice.customer_id)
        else:
            code, message = failure or (
                (result.decline_code or "declined", result.message) if result else ("failed", "")
            )
            locked.status = Status.FAILED
            locked.failure_code = code[:40]
            locked.failure_message = message[:300]
            if result is not None:
                locked.gateway_reference = result.reference
            record_failure(locked, by=by)
        save_settled(locked, succeeded, by=by)
        count_outcome(locked)  # the fraud engine's counters, in the same commit
    if compensation is not None:
        send_refund(compensation, by=SYSTEM)
        locked.refresh_from_db()
    if locked.forget_card:
        # A new card its payer did not keep: erased now that the payment is final.
        forget_unsaved_card(locked.payment_method, by=SYSTEM)
    return locked
