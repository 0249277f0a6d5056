"""Reads of the analysts' rules and lists, as the engine runs them: one query each."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils import timezone

from db.compiled import CompiledQuery, compiled
from db.dialect import is_postgresql
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


# The engine's reads run in every card payment: compiled by the ORM once per process and
# prepared on the connection (db.compiled), like the rest of the card payment's statements.
@compiled()
def _enabled_rules() -> Any:
    return (
        FraudRule.objects.filter(enabled=True)
        .order_by("pk")
        .values("pk", "version", "action", "position", "description", "expression")[:MAX_LIVE_RULES]
    )


@compiled(int)
def _customer_email(customer_id: int) -> Any:
    from billing.models import Customer

    return Customer.objects.filter(pk=customer_id).values("email")


def customer_email(customer_id: int) -> str:
    """The customer's email, for the email and email-domain list entries."""
    row = _customer_email.first(customer_id)
    return row["email"] if row else ""


def live_rules() -> list[LiveRule]:
    """The enabled rules, compiled (one query; at most ``MAX_LIVE_RULES``)."""
    return _compiled_rules(_enabled_rules.fetch())


def _compiled_rules(rows: Iterable[dict[str, Any]]) -> list[LiveRule]:
    rules = []
    for row in rows:
        compiled_expression = compiled_rule(row["pk"], row["version"], row["expression"])
        if compiled_expression is not None:
            rules.append(
                LiveRule(
                    row["pk"],
                    row["version"],
                    row["action"],
                    row["position"],
                    row["description"],
                    compiled_expression,
                )
            )
    return rules


# A fixed number of values per key, so that the statement is one compiled, prepared text:
# the address's networks (IPv4 /8 to /32: 25; IPv6 /16 to /128 on nibble boundaries: 29),
# a BIN's 6, 7 and 8 digits, the card's, billing and IP countries. Unused slots hold "".
SLOTS = {"card": 1, "customer": 1, "email": 1, "email_domain": 1, "bin": 3, "country": 3, "ip": 29}


_SLOT_COUNT = sum(SLOTS.values())


def _build_list_hits(*values: Any) -> Any:
    # One condition per key (its slots in one IN list), not one per slot: 47 parameters
    # instead of 79, under psycopg's limit for caching a statement's parsing (50), which
    # otherwise parses this text again in every card payment (docs/performance.md).
    *wanted, moment = values
    condition = Q()
    start = 0
    for key, count in SLOTS.items():
        condition |= Q(key=key, value__in=wanted[start : start + count])
        start += count
    return (
        FraudListEntry.objects.filter(condition, removed_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=moment))
        .order_by("pk")
        .values("pk", "list", "key", "value")
    )


_list_hits = CompiledQuery(_build_list_hits, *([str] * _SLOT_COUNT), datetime.datetime)


def _slot_values(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """One value per slot, in ``SLOTS`` order ("" for an unused one)."""
    given: dict[str, list[str]] = {key: [] for key in SLOTS}
    for key, value in pairs:
        given[key].append(value)
    values: list[str] = []
    for key, count in SLOTS.items():
        mine = given[key][:count]
        values += mine
        values += [""] * (count - len(mine))
    return values


def list_hits(
    pairs: Iterable[tuple[str, str]], *, at: datetime.datetime | None = None
) -> list[ListHit]:
    """The live list entries (not removed, not expired at ``at``) matching any of the
    (key, value) pairs: one compiled query on the partial index (key, value). Values past
    a key's slots (``SLOTS``) are not looked up."""
    rows = _list_hits.fetch(*_slot_values(pairs), at or timezone.now())
    return [ListHit(row["pk"], row["list"], row["key"], row["value"]) for row in rows]


# What the engine reads for an attempt besides its features, in one statement (PostgreSQL):
# the list entries it hits, the enabled rules, the live model version and the score
# thresholds, on the thresholds' row (which the attempt's facts have stored already); the
# entries and the rules as arrays of JSON arrays (JSON objects would send their keys as
# parameters: past psycopg's 50 for caching the statement's parsing).
_HIT_FIELDS = ("pk", "list", "key", "value")
_RULE_FIELDS = ("pk", "version", "action", "position", "description", "expression")


def _build_engine_reads(*values: Any) -> Any:
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models import F, Func, JSONField, Subquery
    from django.db.models.functions import JSONArray

    from payments.fraud.models import FraudModelVersion, RiskSettings

    def as_json(names: tuple[str, ...]) -> JSONArray:
        return JSONArray(*(F(name) for name in names))

    hits = _build_list_hits(*values).values(row=as_json(_HIT_FIELDS))
    enabled = FraudRule.objects.filter(enabled=True).order_by("pk")
    rules = enabled.values(row=as_json(_RULE_FIELDS))[:MAX_LIVE_RULES]
    live = FraudModelVersion.objects.filter(live=True).order_by("pk")
    return (
        RiskSettings.objects.order_by("pk")
        .values("review_score", "block_score")
        .annotate(
            model=Subquery(live.values("pk")[:1]),
            model_sha256=Subquery(live.values("model_sha256")[:1]),
            # One JSON value each (to_jsonb of the array), decoded once, not once a row.
            rules=Func(ArraySubquery(rules), function="to_jsonb", output_field=JSONField()),
            hits=Func(ArraySubquery(hits), function="to_jsonb", output_field=JSONField()),
        )[:1]
    )


_engine_reads = CompiledQuery(_build_engine_reads, *([str] * _SLOT_COUNT), datetime.datetime)


def engine_reads(
    pairs: Iterable[tuple[str, str]], *, at: datetime.datetime | None = None
) -> tuple[list[ListHit], list[LiveRule], dict[str, Any] | None]:
    """What the engine reads for an attempt besides its features: the list entries the
    (key, value) pairs hit (``list_hits``), the enabled rules (``live_rules``) and the live
    model version with the score thresholds (``scoring.live_version``: None when no version
    is live). One statement on PostgreSQL, three elsewhere."""
    if is_postgresql():
        row = _engine_reads.first(*_slot_values(pairs), at or timezone.now())
        if row is not None:
            live = None
            if row["model"] is not None:
                live = {
                    "pk": row["model"],
                    "model_sha256": row["model_sha256"],
                    "review_score": row["review_score"],
                    "block_score": row["block_score"],
                }
            hits = [ListHit(*hit) for hit in row["hits"]]
            rules = [dict(zip(_RULE_FIELDS, rule, strict=True)) for rule in row["rules"]]
            return hits, _compiled_rules(rules), live
    from payments.fraud.scoring import live_version

    return list_hits(pairs, at=at), live_rules(), live_version()


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
        for row in theirs.order_by().values("status").annotate(n=Count("pk"), total=Sum("amount"))
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
