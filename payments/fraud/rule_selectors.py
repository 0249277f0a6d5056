"""Reads of the analysts' rules and lists, as the engine runs them: one query each."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db.models import Q
from django.utils import timezone

from payments.fraud.engine import MAX_LIVE_RULES, ListHit, LiveRule
from payments.fraud.expressions import CompiledExpression
from payments.fraud.models import FraudListEntry, FraudRule

# Compiled once per rule version and process: a rule's text never changes under a version.
_compiled: dict[tuple[int, int], CompiledExpression] = {}


def compiled_rule(pk: int, version: int, expression: str) -> CompiledExpression | None:
    """The rule's compiled expression, cached by (id, version); None if it no longer checks
    (a feature removed from the registry since it was saved: the rule is skipped)."""
    from payments.fraud.expressions import ExpressionError, compile_expression
    from payments.fraud.rule_services import feature_kinds

    found = _compiled.get((pk, version))
    if found is None:
        try:
            found = compile_expression(expression, feature_kinds())
        except ExpressionError:
            return None
        if len(_compiled) > 10 * MAX_LIVE_RULES:
            _compiled.clear()
        _compiled[(pk, version)] = found
    return found


def live_rules() -> list[LiveRule]:
    """The enabled rules, compiled (one query; at most ``MAX_LIVE_RULES``)."""
    rows = FraudRule.objects.filter(enabled=True).values_list(
        "pk", "version", "action", "position", "description", "expression"
    )[:MAX_LIVE_RULES]
    rules = []
    for pk, version, action, position, description, expression in rows:
        compiled = compiled_rule(pk, version, expression)
        if compiled is not None:
            rules.append(LiveRule(pk, version, action, position, description, compiled))
    return rules


def list_hits(
    pairs: Iterable[tuple[str, str]], *, at: datetime.datetime | None = None
) -> list[ListHit]:
    """The live list entries (not removed, not expired at ``at``) matching any of the
    (key, value) pairs: one query on the partial index (key, value)."""
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    condition = Q()
    for key, wanted in sorted(values.items()):
        condition |= Q(key=key, value__in=wanted)
    if not condition:
        return []
    moment = at or timezone.now()
    rows = (
        FraudListEntry.objects.filter(condition, removed_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=moment))
        .order_by("pk")
        .values_list("pk", "list", "key", "value")
    )
    return [ListHit(*row) for row in rows]


def review_context(payment_id: int, customer_id: int) -> dict[str, object]:
    """What an analyst sees beside a held payment: the engine's evaluation (score, model
    version, top features, matched rules and list entries) and the customer's history
    (card payments by outcome, refunds, labels, the latest ten payments). Four queries."""
    from django.db.models import Count, Sum

    from payments.fraud.models import FraudLabel, RiskEvaluation
    from payments.models import Payment

    evaluation = RiskEvaluation.objects.filter(payment_id=payment_id).first()
    theirs = Payment.objects.filter(invoice__customer_id=customer_id)
    by_status = {
        row["status"]: {"count": row["n"], "amount": row["total"] or 0}
        for row in theirs.order_by()
        .values("status")
        .annotate(n=Count("pk"), total=Sum("amount"))
    }
    labels = dict(
        FraudLabel.objects.filter(payment__invoice__customer_id=customer_id)
        .order_by()
        .values_list("label")
        .annotate(n=Count("pk"))
    )
    latest = list(
        theirs.exclude(pk=payment_id)
        .order_by("-created_at", "-pk")
        .values("pk", "created_at", "amount", "currency", "status", "risk_decision", "card_last4")[
            :10
        ]
    )
    return {
        "evaluation": evaluation,
        "history": {"by_status": by_status, "labels": labels, "latest": latest},
    }
