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

These are the **safety rules**. With the fraud engine on (``FRAUD_ENGINE_ENABLED``, the
default), the decision is then made in the engine's fixed order (``engine.decide``:
lists, safety blocks, the analysts' rules, safety reviews, the score; docs/fraud.md)
and the assessment carries the ``RiskEvaluation`` to store with the payment.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.money import Money
from payments.exceptions import StepUpForPayment
from payments.fraud.engine import Decision, decide, list_keys
from payments.fraud.models import RiskDecision, RuleAction
from payments.fraud.selectors import RiskFacts, risk_facts
from payments.fraud.services import ensure_risk_settings
from payments.vault.models import PaymentMethod

FAILURE_WINDOW = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class RiskAssessment:
    """A decision and the rules that made it (``rule``, ``message`` and its figures)."""

    decision: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    # The RiskEvaluation's fields (features, score, matches, duration): engine on only.
    evaluation: dict[str, Any] | None = None
    # The customer's email as the engine read it (engine on only): the velocity counters'
    # email key, not read again by the caller.
    email: str = ""


# What a step-up rule finds about the payer: a second factor confirmed within the step-up
# window ("fresh"), one to confirm again ("stale"), or none possible ("unavailable": an API
# client, a customer without a second factor), which holds the payment for review.
StepUpState = Callable[[], str]


def assess_card_payment(
    *,
    payment_method: PaymentMethod,
    customer_id: int,
    amount: Money,
    facts: RiskFacts | None = None,
    address: str = "",
    email: str = "",
    step_up: StepUpState | None = None,
    features: Mapping[str, Any] | None = None,
    invoice: Any = None,
) -> RiskAssessment:
    """Allow, review or block one card payment attempt, with the reasons (rules and figures).

    ``facts``: read by the caller in a query of its own (``risk_facts_queryset`` with
    more columns, as the card payment's reserve step does), else read here. With the
    engine on and an ``invoice`` (the card payment always passes it), ``features`` (else
    computed here), ``email`` (the customer's, for the lists; else read with the
    features, or here when the caller gave them) and ``step_up`` (what a step-up rule
    asks) feed the engine; a step-up rule with a second factor to confirm again raises
    ``StepUpForPayment``. Without an invoice the safety rules alone decide (there is no
    attempt to store an evaluation for).
    """
    started = time.perf_counter()
    facts = _facts(payment_method, customer_id, facts, address)
    safety = _safety_rules(amount, facts, address)
    if not settings.FRAUD_ENGINE_ENABLED or (invoice is None and features is None):
        return safety
    if features is None:
        from payments.fraud.features import read_attempt

        attempt, features = read_attempt(
            payment_method=payment_method,
            customer_id=customer_id,
            amount=amount,
            invoice=invoice,
            address=address,
        )
        email = email or attempt.email  # read with the features: not read again
    elif not email:
        from payments.fraud.rule_selectors import customer_email

        email = customer_email(customer_id)
    return _engine(
        safety,
        features=features,
        email=email,
        keys=list_keys(
            features,
            fingerprint=payment_method.fingerprint,
            customer_id=customer_id,
            address=address,
            email=email,
        ),
        step_up=step_up,
        started=started,
    )


def _engine(
    safety: RiskAssessment,
    *,
    features: Mapping[str, Any],
    keys: list[tuple[str, str]],
    email: str,
    step_up: StepUpState | None,
    started: float,
) -> RiskAssessment:
    """Lists, safety rules, the analysts' rules and the score, in the engine's order."""
    from payments.fraud.rule_selectors import engine_reads
    from payments.fraud.scoring import score_with

    hits, rules, live = engine_reads(keys)
    scored = score_with(dict(features), live)
    inputs: dict[str, Any] = {
        "features": features,
        "hits": hits,
        "safety_decision": safety.decision,
        "safety_reasons": safety.reasons,
        "rules": rules,
        "score": scored.score if scored is not None else None,
        # Read with the live model's version (no model, no score to hold against them).
        "review_score": scored.review_score if scored is not None else 0,
        "block_score": scored.block_score if scored is not None else 0,
    }
    decision = decide(**inputs)
    if decision.action == RuleAction.STEP_UP:
        state = step_up() if step_up is not None else "unavailable"
        if state == "stale":
            raise StepUpForPayment(
                _(
                    "for your security, confirm your second factor (two-step sign-in) again,"
                    " then pay: nothing was charged"
                ),
                field="step_up",
            )
        if state == "fresh":
            passed = decide(**inputs, step_up_passed=True)
            decision = Decision(
                passed.action,
                passed.decided_by,
                [
                    *decision.matched,
                    {"rule": "step_up_passed", "message": "second factor confirmed"},
                ],
                passed.reasons,
            )
        else:
            unavailable = {
                "rule": "step_up_unavailable",
                "message": "a rule asks for a second factor the payer cannot give here: held"
                " for review",
            }
            decision = Decision(
                RiskDecision.REVIEW,
                "rule",
                [*decision.matched, unavailable],
                [*decision.reasons, unavailable],
            )
    evaluation = {
        "features": _json_safe(features),
        "score": scored.score if scored is not None else None,
        "model_version": scored.model_version if scored is not None else None,
        "top_features": [list(pair) for pair in scored.top_features] if scored is not None else [],
        "matched": decision.matched,
        "decision": decision.action,
        "decided_by": decision.decided_by,
        "duration_us": int((time.perf_counter() - started) * 1_000_000),
    }
    return RiskAssessment(decision.action, decision.reasons, evaluation, email=email)


def _json_safe(features: Mapping[str, Any]) -> dict[str, Any]:
    """The features as JSON values (numbers, text, true/false, null)."""
    safe: dict[str, Any] = {}
    for name, value in features.items():
        if value is None or isinstance(value, bool | int | float | str):
            safe[name] = value
        else:
            safe[name] = float(value) if hasattr(value, "__float__") else str(value)
    return safe


def _facts(
    payment_method: PaymentMethod, customer_id: int, facts: RiskFacts | None, address: str
) -> RiskFacts:
    """The attempt's facts as given, else read (storing the thresholds' row if missing)."""
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
    return facts


def _safety_rules(amount: Money, facts: RiskFacts, address: str) -> RiskAssessment:
    """The built-in safety rules (module docstring): block, review or allow."""
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
