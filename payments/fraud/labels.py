"""What payments turned out to be: the labels the risk model learns from."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from payments.exceptions import InvalidFraudLabel
from payments.fraud.models import FraudLabel
from security.actors import Actor, is_system, user_of

LABEL_PERMISSION = "payments.decide_risk"


def record_label(
    payment: object,
    *,
    label: str,
    source: str,
    reason: str = "",
    by: Actor,
    request: HttpRequest | None = None,
) -> FraudLabel:
    """Label a card payment fraud or good, saying where the knowledge came from (a review,
    a refund as fraud, a chargeback, a confirmation, an import). A person needs the fraud
    analyst's ``payments.decide_risk``; the system (a chargeback file, an import) may.
    Audited ``fraud.payment_labelled``; the latest label of a payment is the one trained on."""
    from payments.models import Payment

    if not is_system(by) and not (hasattr(by, "has_perm") and by.has_perm(LABEL_PERMISSION)):
        raise InvalidFraudLabel(_("labelling payments needs the fraud analyst's permission"))
    if label not in FraudLabel.Label.values:
        raise InvalidFraudLabel(_("a label is fraud or good"), field="label")
    if source not in FraudLabel.Source.values:
        raise InvalidFraudLabel(
            _("the source is one of: %(sources)s")
            % {"sources": ", ".join(FraudLabel.Source.values)},
            field="source",
        )
    if not isinstance(payment, Payment) or payment.pk is None:
        raise InvalidFraudLabel(_("choose a payment"), field="payment")
    if payment.method != Payment.Method.CARD:
        raise InvalidFraudLabel(_("only card payments are labelled"), field="payment")
    reason = reason.strip() if isinstance(reason, str) else ""
    with transaction.atomic():
        made = FraudLabel.objects.create(
            payment=payment,
            label=label,
            source=source,
            reason=reason[:500],
            by=user_of(by),
            at=timezone.now(),
        )
        record(
            "fraud.payment_labelled",
            actor=by,
            obj=payment,
            request=request,
            label=label,
            source=source,
            reason=made.reason,
        )
    return made
