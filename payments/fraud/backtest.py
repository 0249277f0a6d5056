"""Backtesting: what a rule or threshold change would have decided over the last N days,
before it is switched on. Reads the stored ``RiskEvaluation`` rows (features snapshot,
score, list and safety matches, decision) and decides each again with the engine's own
``decide``, the candidate in place; counts the outcomes with the payments' labels.

As the attempts were judged: the list entries and safety rules that matched then, the
score the live model gave then. Only the analysts' rules and the score thresholds are
what the candidate says (the other enabled rules as they are now).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from payments.fraud.engine import ListHit, LiveRule, decide
from payments.fraud.expressions import CompiledExpression
from payments.fraud.models import FraudListEntry, RiskDecision, RiskEvaluation, RuleAction

MAX_DAYS = 365
# The safety rules' names (payments.fraud.rules) by the decision they make.
SAFETY_BLOCKS = frozenset(
    {
        "card_failures",
        "customer_failures",
        "held_for_review",
        "new_cards_customer",
        "new_cards_address",
    }
)
SAFETY_REVIEWS = frozenset({"new_card_amount"})
OUTCOMES = (RuleAction.ALLOW, RuleAction.STEP_UP, RuleAction.REVIEW, RuleAction.BLOCK)
LABELS = ("fraud", "good", "unlabelled")


@dataclass(frozen=True)
class CandidateRule:
    """A rule to test: new (``replaces`` None) or a new text of an existing rule."""

    action: str
    expression: CompiledExpression
    description: str = "candidate"
    replaces: int | None = None
    position: int = 0


@dataclass
class Counts:
    """Attempts per outcome, split by what the payment turned out to be."""

    by_outcome: dict[str, dict[str, int]] = field(
        default_factory=lambda: {o: dict.fromkeys(LABELS, 0) for o in OUTCOMES}
    )

    def add(self, outcome: str, label: str) -> None:
        self.by_outcome[outcome][label] += 1

    def total(self, outcome: str) -> int:
        return sum(self.by_outcome[outcome].values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            o: {**labels, "total": sum(labels.values())} for o, labels in self.by_outcome.items()
        }


@dataclass
class BacktestResult:
    """Before (as decided then) and after (with the candidate), with the changed attempts."""

    since: datetime.datetime
    until: datetime.datetime
    evaluations: int = 0
    before: Counts = field(default_factory=Counts)
    after: Counts = field(default_factory=Counts)
    changed: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "evaluations": self.evaluations,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "changed": self.changed,
            "examples": self.examples,
        }


def latest_labels(since: datetime.datetime, until: datetime.datetime) -> dict[int, str]:
    """payment id -> its latest label (fraud or good) for the payments evaluated in the window."""
    from payments.fraud.models import FraudLabel

    rows = (
        FraudLabel.objects.filter(
            payment__risk_evaluation__created_at__gte=since,
            payment__risk_evaluation__created_at__lt=until,
        )
        .order_by("payment_id", "at", "pk")
        .values_list("payment_id", "label")
    )
    return dict(rows.iterator(chunk_size=5000))


def _stored(since: datetime.datetime, until: datetime.datetime) -> Iterator[tuple[Any, ...]]:
    return (
        RiskEvaluation.objects.filter(created_at__gte=since, created_at__lt=until)
        .order_by("created_at", "pk")
        .values_list("payment_id", "features", "score", "matched", "decision")
        .iterator(chunk_size=2000)
    )


def replay_inputs(matched: list[dict[str, Any]]) -> tuple[list[ListHit], str, list[dict[str, Any]]]:
    """The list hits and safety decision and reasons of a stored evaluation's matches."""
    hits = [
        ListHit(
            reason.get("entry", 0),
            FraudListEntry.List.ALLOW
            if reason["rule"] == "allow_list"
            else FraudListEntry.List.BLOCK,
            reason.get("key", ""),
            reason.get("value", ""),
        )
        for reason in matched
        if reason.get("rule") in ("allow_list", "block_list")
    ]
    safety = [reason for reason in matched if reason.get("rule") in SAFETY_BLOCKS | SAFETY_REVIEWS]
    decision = RiskDecision.ALLOW
    if any(reason["rule"] in SAFETY_BLOCKS for reason in safety):
        decision = RiskDecision.BLOCK
    elif safety:
        decision = RiskDecision.REVIEW
    return hits, decision, safety


def candidate_rules(
    rules: Iterable[LiveRule], candidate: CandidateRule | None, *, disable: int | None = None
) -> list[LiveRule]:
    """The enabled rules with the candidate in place (replacing its rule, if any)."""
    replaced = {candidate.replaces} if candidate and candidate.replaces else set()
    if disable is not None:
        replaced.add(disable)
    kept = [rule for rule in rules if rule.pk not in replaced]
    if candidate is not None:
        kept.append(
            LiveRule(
                pk=candidate.replaces or 0,
                version=0,
                action=candidate.action,
                position=candidate.position,
                description=candidate.description,
                expression=candidate.expression,
            )
        )
    return kept


def backtest(
    *,
    days: int,
    rule: CandidateRule | None = None,
    disable: int | None = None,
    review_score: int | None = None,
    block_score: int | None = None,
    rules: list[LiveRule] | None = None,
    now: datetime.datetime | None = None,
) -> BacktestResult:
    """Decide the last ``days`` days of evaluations again with the candidate rule (or
    ``disable``: an enabled rule switched off) and thresholds (None: the current ones)."""
    from payments.fraud.rule_selectors import live_rules
    from payments.fraud.selectors import get_risk_settings

    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: a whole number from 1 to {MAX_DAYS}")
    until = now or timezone.now()
    since = until - datetime.timedelta(days=days)
    thresholds = get_risk_settings()
    review_at = thresholds.review_score if review_score is None else review_score
    block_at = thresholds.block_score if block_score is None else block_score
    running = candidate_rules(live_rules() if rules is None else rules, rule, disable=disable)
    labels = latest_labels(since, until)
    result = BacktestResult(since=since, until=until)
    for payment_id, features, score, matched, stored in _stored(since, until):
        hits, safety_decision, safety = replay_inputs(matched or [])
        decided = decide(
            features=features or {},
            hits=hits,
            safety_decision=safety_decision,
            safety_reasons=safety,
            rules=running,
            score=score,
            review_score=review_at,
            block_score=block_at,
        )
        label = labels.get(payment_id, "unlabelled")
        result.evaluations += 1
        result.before.add(stored, label)
        result.after.add(decided.action, label)
        if decided.action != stored:
            result.changed += 1
            if len(result.examples) < 20:
                result.examples.append(
                    {
                        "payment": payment_id,
                        "before": stored,
                        "after": decided.action,
                        "label": label,
                    }
                )
    return result
