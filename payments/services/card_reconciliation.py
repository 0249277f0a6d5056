"""Card payments whose outcome is not known yet: ask the gateway by the payment's own key
(never guess), and the job that settles them and retries refunds left pending. Bank files
are ``payments.reconciliation``."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from audit import SYSTEM
from payments.fraud.models import RiskDecision
from payments.gateways import get_gateway
from payments.models import Payment, Refund
from payments.services.refunds import send_refund
from payments.services.settlement import settle
from security.actors import Actor

Status = Payment.Status


def reconcile_payment(payment: Payment, *, by: Actor = SYSTEM) -> Payment:
    """Ask the gateway (by the payment's key) what became of a pending or unknown payment.

    A charge found there is settled as the gateway says; no charge found means
    the request never arrived: FAILED, but only once the payment is older than
    PAYMENTS_RECONCILE_AFTER_MINUTES (an attempt may still be on its way).
    """
    if payment.is_final or payment.awaiting_risk_review:
        return payment  # a payment held for review was never sent: nothing to ask
    result = get_gateway().lookup(idempotency_key=payment.idempotency_key)
    if result is not None:
        return settle(payment, result, by=by)
    stale = timezone.now() - datetime.timedelta(minutes=settings.PAYMENTS_RECONCILE_AFTER_MINUTES)
    if _charge_started_at(payment) < stale:
        return settle(
            payment,
            None,
            by=by,
            failure=("no_charge", "the acquirer never received the payment"),
        )
    return Payment.objects.get(pk=payment.pk)


def _charge_started_at(payment: Payment) -> datetime.datetime:
    """When the charge could first have been sent: on approval for a payment held for review."""
    return payment.risk_reviewed_at or payment.created_at


def reconcile_payments(*, by: Actor = SYSTEM) -> dict[str, int]:
    """The reconciliation job: settle unknown payments, stale pending ones, retry refunds."""
    stale = timezone.now() - datetime.timedelta(minutes=settings.PAYMENTS_RECONCILE_AFTER_MINUTES)
    counts = {"checked": 0, "settled": 0, "refunds_retried": 0}
    # A payment approved after a risk review is charged from its approval on, not its
    # creation; one still waiting for the analyst was never sent and is left alone.
    candidates = Payment.objects.filter(
        Q(status=Status.UNKNOWN)
        | Q(status=Status.PENDING, risk_reviewed_at__lt=stale)
        | (
            Q(status=Status.PENDING, risk_reviewed_at__isnull=True, created_at__lt=stale)
            & ~Q(risk_decision=RiskDecision.REVIEW)
        )
    )
    for payment in candidates.order_by("pk"):
        counts["checked"] += 1
        if reconcile_payment(payment, by=by).is_final:
            counts["settled"] += 1
    for refund in Refund.objects.filter(status=Refund.Status.PENDING, created_at__lt=stale):
        counts["refunds_retried"] += 1
        send_refund(refund, by=by)
    return counts
