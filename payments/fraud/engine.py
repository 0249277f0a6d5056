"""The decision order of the risk engine, as one pure function (``decide``) that the live
engine (``payments.fraud.rules.assess_card_payment``) and backtesting
(``payments.fraud.backtest``) both call, so a backtest decides exactly as the engine would.

Order (docs/fraud.md, "Decision order"); the first step that decides, decides:

1. **lists**: a block-list hit blocks, else an allow-list hit allows;
2. **safety rules** (``rules.py``: failures, card testing, holds) that block;
3. the analysts' **rules**, by kind in ``RULE_ORDER`` — allow, block, step-up, review —
   the first enabled rule of the first kind with a match decides;
4. the safety rules that hold for review (a new card above its limit);
5. the **score** against ``block_score`` then ``review_score``;
6. otherwise allow.

Every matching rule is recorded (``matched``), not only the one that decided, so the
analyst sees all reasons in the review queue.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payments.fraud.expressions import CompiledExpression
from payments.fraud.models import RULE_ORDER, FraudListEntry, RiskDecision, RuleAction

MAX_LIVE_RULES = 200  # bounded work per attempt; more enabled rules are refused at save


@dataclass(frozen=True)
class LiveRule:
    """An enabled rule as the engine runs it (compiled once per version, per process)."""

    pk: int
    version: int
    action: str
    position: int
    description: str
    expression: CompiledExpression


@dataclass(frozen=True)
class ListHit:
    pk: int
    list: str
    key: str
    value: str

    def as_reason(self) -> dict[str, Any]:
        verb = "allow" if self.list == FraudListEntry.List.ALLOW else "block"
        return {
            "rule": f"{verb}_list",
            "entry": self.pk,
            "key": self.key,
            "value": self.value,
            "message": f"on the {verb} list ({self.key} {self.value})",
        }


@dataclass(frozen=True)
class Decision:
    """What the engine decided (allow, review, block or step_up), what decided it (list,
    safety, rule, score, default), every match (``matched``) and the reasons shown."""

    action: str
    decided_by: str
    matched: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)


def matching_rules(rules: Iterable[LiveRule], features: Mapping[str, Any]) -> list[LiveRule]:
    """The rules whose condition holds, in the engine's order (kind, position, id). A rule
    that fails on unexpected values does not match (it never fails the payment)."""
    order = {action: index for index, action in enumerate(RULE_ORDER)}
    matches = []
    for rule in sorted(rules, key=lambda r: (order[RuleAction(r.action)], r.position, r.pk)):
        try:
            if rule.expression.matches(features):
                matches.append(rule)
        except (TypeError, ValueError, ArithmeticError):
            continue
    return matches


def _rule_reason(rule: LiveRule) -> dict[str, Any]:
    return {
        "rule": f"fraud_rule_{rule.pk}",
        "fraud_rule": rule.pk,
        "version": rule.version,
        "action": rule.action,
        "message": f"{rule.description} ({rule.expression.text})",
    }


def decide(
    *,
    features: Mapping[str, Any],
    hits: Iterable[ListHit],
    safety_decision: str,
    safety_reasons: list[dict[str, Any]],
    rules: Iterable[LiveRule],
    score: int | None,
    review_score: int,
    block_score: int,
    step_up_passed: bool = False,
) -> Decision:
    """The decision for one attempt in the engine's fixed order (module docstring).

    ``step_up_passed``: the payer has just confirmed a fresh second factor, so step-up
    rules no longer decide (the review rules and the score still do)."""
    hits = list(hits)
    blocked = [hit.as_reason() for hit in hits if hit.list == FraudListEntry.List.BLOCK]
    allowed = [hit.as_reason() for hit in hits if hit.list == FraudListEntry.List.ALLOW]
    if blocked:
        return Decision(RiskDecision.BLOCK, "list", blocked + allowed, blocked)
    if allowed:
        return Decision(RiskDecision.ALLOW, "list", allowed, allowed)
    if safety_decision == RiskDecision.BLOCK:
        return Decision(RiskDecision.BLOCK, "safety", safety_reasons, safety_reasons)
    matches = matching_rules(rules, features)
    matched = [_rule_reason(rule) for rule in matches] + safety_reasons
    score_reason = (
        [{"rule": "score", "score": score, "message": f"risk score {score}"}]
        if score is not None
        else []
    )
    for rule in matches:
        if rule.action == RuleAction.STEP_UP and step_up_passed:
            continue
        return Decision(rule.action, "rule", matched + score_reason, [_rule_reason(rule)])
    if safety_decision == RiskDecision.REVIEW:
        return Decision(RiskDecision.REVIEW, "safety", matched + score_reason, safety_reasons)
    if score is not None and score >= block_score:
        return Decision(RiskDecision.BLOCK, "score", matched + score_reason, score_reason)
    if score is not None and score >= review_score:
        return Decision(RiskDecision.REVIEW, "score", matched + score_reason, score_reason)
    return Decision(RiskDecision.ALLOW, "default", matched + score_reason, [])


def networks_of(address: str) -> list[str]:
    """Every network holding the address, as list entries store them (``192.0.2.0/24``),
    from the widest allowed prefix to the address itself: a CIDR entry matches with an
    exact lookup (bounded: 25 values for IPv4, 29 for IPv6, whose entries are on nibble
    boundaries)."""
    return list(_networks(address))


@functools.lru_cache(maxsize=4096)
def _networks(address: str) -> tuple[str, ...]:
    # Remembered per address (a payer's next attempt comes from the same one): each
    # network is the address with its host bits cleared, written as ip_network writes it.
    from payments.fraud.rule_services import PREFIX_STEP, WIDEST_PREFIX

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ()
    bits, value = ip.max_prefixlen, int(ip)
    return tuple(
        f"{type(ip)(value >> (bits - prefix) << (bits - prefix))}/{prefix}"
        for prefix in range(WIDEST_PREFIX[ip.version], bits + 1, PREFIX_STEP[ip.version])
    )


def list_keys(
    features: Mapping[str, Any], *, fingerprint: str, customer_id: int, address: str, email: str
) -> list[tuple[str, str]]:
    """The (key, value) pairs of one attempt that list entries are matched on."""
    key = FraudListEntry.Key
    pairs: list[tuple[str, str]] = [(key.CARD, fingerprint), (key.CUSTOMER, str(customer_id))]
    email = (email or "").strip().lower()
    if email:
        pairs.append((key.EMAIL, email))
        pairs.append((key.EMAIL_DOMAIN, email.rpartition("@")[2]))
    card_bin = features.get("card_bin")
    if isinstance(card_bin, str) and card_bin:
        # Entries hold 6 to 8 digits: the attempt's BIN matches each prefix length.
        pairs += [(key.BIN, card_bin[:n]) for n in (6, 7, 8) if len(card_bin) >= n]
    for name in ("card_country", "billing_country", "ip_country"):
        country = features.get(name)
        if isinstance(country, str) and country:
            pairs.append((key.COUNTRY, country.upper()))
    if address:
        pairs += [(key.IP, network) for network in networks_of(address)]
    return sorted(set(pairs))
