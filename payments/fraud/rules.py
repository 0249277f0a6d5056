"""The one risk decision point: every card payment attempt is judged here before any charge.

``assess_card_payment`` applies the rules with the thresholds of ``RiskSettings``
(edited by fraud analysts in the admin):

* more than ``max_failed_attempts`` failed card payments in the last hour for the
  card's fingerprint (the vault's keyed HMAC of the number, so every token of the
  same card counts) or for the customer → **block**;
* an amount above ``new_card_limits[currency]`` on a **new card** → **review**. A card
  is new for a customer until a payment with it (any token with its fingerprint) has
  been captured for that customer;
* otherwise → **allow**.

Block rules are checked first. It costs one query (``selectors.risk_facts``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from billing.money import Money
from payments.fraud.models import RiskDecision
from payments.fraud.selectors import RiskFacts, get_risk_settings, risk_facts
from payments.vault.models import PaymentMethod

FAILURE_WINDOW = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class RiskAssessment:
    """A decision and the rules that made it (``rule``, ``message`` and its figures)."""

    decision: str
    reasons: list[dict[str, Any]] = field(default_factory=list)


def assess_card_payment(
    *,
    payment_method: PaymentMethod,
    customer_id: int,
    amount: Money,
    facts: RiskFacts | None = None,
) -> RiskAssessment:
    """Allow, review or block one card payment attempt, with the reasons (rules and figures).

    ``facts``: read by the caller in a query of its own (``risk_facts_queryset`` with
    more columns, as the card payment's reserve step does), else read here.
    """
    since = timezone.now() - FAILURE_WINDOW
    if facts is None:
        facts = risk_facts(
            fingerprint=payment_method.fingerprint, customer_id=customer_id, since=since
        )
    if facts is None:  # a fresh database: the first attempt creates the default row
        get_risk_settings()
        facts = risk_facts(
            fingerprint=payment_method.fingerprint, customer_id=customer_id, since=since
        )
        assert facts is not None
    most = facts.max_failed_attempts
    blocks = [
        {
            "rule": rule,
            "message": f"{count} failed card payments {whose} in the last hour (more than {most})",
            "failures": count,
            "limit": most,
        }
        for rule, count, whose in (
            ("card_failures", facts.card_failures, "with this card"),
            ("customer_failures", facts.customer_failures, "by this customer"),
        )
        if count > most
    ]
    if blocks:
        return RiskAssessment(RiskDecision.BLOCK, blocks)
    limit = facts.new_card_limits.get(amount.currency)
    if limit is not None and amount.amount > limit and not facts.card_known:
        return RiskAssessment(
            RiskDecision.REVIEW,
            [
                {
                    "rule": "new_card_amount",
                    "message": (
                        f"{amount} on a new card is above the review limit of"
                        f" {Money(limit, amount.currency)}"
                    ),
                    "amount": amount.amount,
                    "limit": limit,
                }
            ],
        )
    return RiskAssessment(RiskDecision.ALLOW)
