"""A fraud analyst's decision on a payment the risk engine held for review: approve (the
charge goes ahead) or decline (the payment fails and releases what it held), and the
refund of a captured payment found to be fraud. Here, among the payment services,
because deciding charges, fails or refunds the payment; the thresholds and holds are the
risk engine's (``payments.fraud.services``). Every decision becomes a label the model
learns from (``payments.fraud.labels.record_label``), in the decision's transaction."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import SYSTEM, record
from billing.money import Money
from payments.exceptions import RiskReviewRefused
from payments.fraud.features.velocity import count_outcome
from payments.fraud.labels import record_label
from payments.fraud.models import FraudLabel
from payments.fraud.services import DECIDE_PERMISSION
from payments.models import Payment, Refund
from payments.saved_cards import forget_unsaved_card
from payments.services.refunds import checked_refund
from payments.services.settlement import charge_payment, record_failure
from payments.step_up import require_step_up
from security.actors import Actor, Person, user_of


def record_refused_risk_review(payment_id: int, *, by: Actor, request: HttpRequest | None) -> None:
    """Audit an attempt to decide a risk review without the permission (then refuse it)."""
    with transaction.atomic():
        payment = Payment.objects.filter(pk=payment_id).first()
        record(
            "payment.risk_review_refused",
            actor=by,
            obj=payment,
            request=request,
            payment_id=payment_id,
            rule="permission",
        )


def decide_risk_review(
    payment: Payment,
    *,
    approve: bool,
    reason: str,
    by: Person,
    request: HttpRequest | None,
) -> Payment:
    """A fraud analyst's decision on a payment held for review (permission, step-up, a reason).

    Approve: the charge goes ahead (gateway called after the decision is committed,
    outside any transaction). Decline: the payment FAILS (``risk_declined``) and the
    amount it held on the invoice is released. Either way it is audited, and labelled
    (approve: good, decline: fraud; source ``review``) in the same transaction.
    """
    if not (hasattr(by, "has_perm") and by.has_perm(DECIDE_PERMISSION)):
        record_refused_risk_review(payment.pk, by=by, request=request)
        raise RiskReviewRefused(
            _("deciding a risk review needs the fraud analyst's permission"), field="user"
        )
    require_step_up(request, by, to=_("decide a risk review"), refused=RiskReviewRefused)
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RiskReviewRefused(_("give the reason for the decision"), field="reason")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if not locked.awaiting_risk_review:
            raise RiskReviewRefused(_("this payment is not waiting for a risk review"))
        now = timezone.now()
        locked.risk_reviewed_at = now
        locked.risk_reviewed_by = user_of(by)
        locked.risk_review_note = reason[:500]
        if not approve:
            locked.status = Payment.Status.FAILED
            locked.failure_code = "risk_declined"
            locked.failure_message = "declined after a fraud review; nothing was charged"
            locked.settled_at = now
        locked.save()
        record(
            "payment.risk_approved" if approve else "payment.risk_declined",
            actor=by,
            obj=locked,
            request=request,
            invoice_id=locked.invoice_id,
            amount=locked.amount,
            currency=locked.currency,
            reason=locked.risk_review_note,
        )
        count_outcome(locked)  # a decline fails the attempt: the fraud engine's counters
        record_label(
            locked,
            label=FraudLabel.Label.GOOD if approve else FraudLabel.Label.FRAUD,
            source=FraudLabel.Source.REVIEW,
            reason=locked.risk_review_note,
            by=by,
            request=request,
        )
        if not approve:
            # The same event as any other failed payment, so whoever follows failures sees it.
            record_failure(locked, by=by)
    if approve:
        return charge_payment(locked, by=by)  # its settle erases a card the payer did not keep
    if locked.forget_card:
        # The payer paid with a new card without keeping it: erased now that it is declined.
        forget_unsaved_card(locked.payment_method, by=SYSTEM)
    return locked


def refund_as_fraud(
    payment: Payment, *, reason: str, by: Person, request: HttpRequest | None
) -> Refund:
    """A fraud analyst refunds what is left of a captured card payment found to be fraud
    (permission, step-up, a reason): through the refund service, the invoice reopened (the
    amount is owed again by its rightful payer), audited ``payment.refunded_as_fraud``, and
    the payment labelled fraud (source ``refund``)."""
    if not (hasattr(by, "has_perm") and by.has_perm(DECIDE_PERMISSION)):
        raise RiskReviewRefused(
            _("refunding as fraud needs the fraud analyst's permission"), field="user"
        )
    if payment.method != Payment.Method.CARD:
        raise RiskReviewRefused(_("only card payments are refunded as fraud"), field="payment")
    if payment.refundable <= 0:
        raise RiskReviewRefused(_("nothing of this payment is left to refund"), field="payment")
    refund = checked_refund(
        payment,
        amount=Money(payment.refundable, payment.currency),
        reason=reason,
        purpose=Refund.Purpose.REOPEN,
        event="payment.refunded_as_fraud",
        by=by,
        request=request,
    )
    with transaction.atomic():
        record_label(
            payment,
            label=FraudLabel.Label.FRAUD,
            source=FraudLabel.Source.REFUND,
            reason=refund.reason,
            by=by,
            request=request,
        )
    return refund
