"""The one risk decision point: every card payment attempt is judged here before any charge.

``assess_card_payment`` applies the rules with the thresholds of ``RiskSettings``
(edited by fraud analysts in the admin):

* more than ``max_failed_attempts`` failed card payments in the last hour for the
  card's fingerprint (the vault's keyed HMAC of the number, so every token of the
  same card counts) or for the customer → **block**;
* card testing (issue 17, item 4): the customer or the address is **held** after a
  burst (``RiskHold``) → **block** until a fraud analyst lifts the hold; more than
  ``max_new_cards_per_customer`` different cards added for the customer in the last
  hour, or more than ``max_new_cards_per_address`` different cards paid with from the
  payer's network address → **block**, and the customer (or address) is held
  (``hold`` in the reason: the reserve step opens the hold);
* an amount above ``new_card_limits[currency]`` on a **new card** → **review**. A card
  is new for a customer until a payment with it (any token with its fingerprint) has
  been captured for that customer;
* otherwise → **allow**.

(A card payment below ``min_card_amounts[currency]`` that does not pay the whole rest
is refused as bad input before it is judged: ``payments.services``.)

Block rules are checked first. It costs one query (``selectors.risk_facts``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from billing.money import Money
from payments.fraud.models import RiskDecision
from payments.fraud.selectors import RiskFacts, risk_facts
from payments.fraud.services import ensure_risk_settings
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
    address: str = "",
) -> RiskAssessment:
    """Allow, review or block one card payment attempt, with the reasons (rules and figures).

    ``facts``: read by the caller in a query of its own (``risk_facts_queryset`` with
    more columns, as the card payment's reserve step does), else read here.
    """
    since = timezone.now() - FAILURE_WINDOW
    if facts is None:
        facts = risk_facts(
            fingerprint=payment_method.fingerprint,
            customer_id=customer_id,
            since=since,
            address=address,
        )
    if facts is None:  # a fresh database: the first attempt stores the default row
        ensure_risk_settings()
        facts = risk_facts(
            fingerprint=payment_method.fingerprint,
            customer_id=customer_id,
            since=since,
            address=address,
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
    blocks += _card_testing(facts, address)
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


def _card_testing(facts: RiskFacts, address: str) -> list[dict[str, Any]]:
    """The velocity rules against card testing: a standing hold, or too many new cards for
    the customer or from the address (which opens a hold)."""
    if facts.on_hold:
        return [
            {
                "rule": "held_for_review",
                "message": "card payments of this customer or address are held for a fraud"
                " analyst's review after a burst of new cards",
            }
        ]
    reasons: list[dict[str, Any]] = []
    if facts.customer_new_cards > facts.max_new_cards_per_customer:
        reasons.append(
            {
                "rule": "new_cards_customer",
                "message": f"{facts.customer_new_cards} different cards added for this customer"
                f" in the last hour (more than {facts.max_new_cards_per_customer})",
                "cards": facts.customer_new_cards,
                "limit": facts.max_new_cards_per_customer,
                "hold": "customer",
            }
        )
    cards_here = facts.address_other_cards + 1
    if address and cards_here > facts.max_new_cards_per_address:
        reasons.append(
            {
                "rule": "new_cards_address",
                "message": f"{cards_here} different cards paid with from this address in the"
                f" last hour (more than {facts.max_new_cards_per_address})",
                "cards": cards_here,
                "limit": facts.max_new_cards_per_address,
                "hold": "address",
            }
        )
    return reasons
