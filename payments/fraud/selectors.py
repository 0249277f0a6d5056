"""Reads of the risk engine: its thresholds, and the facts one attempt is judged on."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    IntegerField,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from db.compiled import CompiledQuery
from payments.fraud.models import RiskHold, RiskSettings

# Failures that say nothing about the payer: the platform's own trouble, a capture given
# back because the invoice changed, and attempts the engine blocked itself (counting
# those would keep a blocked card blocked for as long as someone keeps trying).
UNCOUNTED_FAILURES = (
    "risk_blocked",
    "compensated",
    "gateway_error",
    "card_unavailable",
    "no_charge",
)


def get_risk_settings() -> RiskSettings:
    """The one row of thresholds; while none is stored (a fresh database), an unsaved row
    with the defaults (``payments.fraud.services.ensure_risk_settings`` stores it)."""
    row = RiskSettings.objects.filter(pk=RiskSettings.SINGLETON_PK).first()
    return row if row is not None else RiskSettings(pk=RiskSettings.SINGLETON_PK)


def _count(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("status").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@dataclass(frozen=True)
class RiskFacts:
    """What one attempt is judged on: the thresholds and the card's, customer's and
    address's history."""

    max_failed_attempts: int
    new_card_limits: dict[str, int]
    max_new_cards_per_customer: int
    max_new_cards_per_address: int
    min_card_amounts: dict[str, int]
    card_failures: int
    customer_failures: int
    card_known: bool
    customer_new_cards: int
    address_other_cards: int
    on_hold: bool


def _distinct(queryset: QuerySet, group: str, counted: str) -> Coalesce:
    rows = queryset.order_by().values(group).annotate(n=Count(counted, distinct=True)).values("n")
    return Coalesce(Subquery(rows[:1], output_field=IntegerField()), Value(0))


def _since_last_lift(since: Any, customer_id: Any) -> Any:
    """The window's start, or the end of the customer's latest lifted hold if later: an
    analyst's review clears the customer's count. (Only customer holds have a customer.)"""
    lifted = (
        RiskHold.objects.filter(customer_id=customer_id, lifted_at__gte=since)
        .order_by("-lifted_at")
        .values("lifted_at")[:1]
    )
    return Coalesce(
        Subquery(lifted, output_field=DateTimeField()), Value(since, output_field=DateTimeField())
    )


def history_annotations(
    fingerprint: Any, customer_id: Any, since: Any, address: Any = ""
) -> dict[str, Any]:
    """The attempt's history as annotations: ``card_failures``, ``customer_failures``,
    ``card_known``, ``customer_new_cards``, ``address_other_cards`` and ``on_hold`` (see
    ``risk_facts``). ``fingerprint`` may be an expression, such as
    ``OuterRef("fingerprint")`` in a query of the card itself."""
    from payments.models import Payment, PaymentMethod

    failed = Payment.objects.filter(
        status=Payment.Status.FAILED, created_at__gte=since, payment_method__isnull=False
    ).exclude(failure_code__in=UNCOUNTED_FAILURES)
    known = Payment.objects.captured().filter(
        payment_method__fingerprint=fingerprint, payment_method__customer_id=customer_id
    )
    added = PaymentMethod.objects.filter(
        customer_id=customer_id,
        created_at__gte=_since_last_lift(since, customer_id),
    )
    # Kept short on purpose: the whole statement must stay within psycopg's cache of
    # parsed queries (4096 characters; a test checks). An empty address is never
    # counted (the rule ignores it), and no hold has one.
    from_address = (
        Payment.objects.filter(client_ip=address, created_at__gte=since)
        .exclude(payment_method__fingerprint=fingerprint)
        # Attempts the engine blocked itself tested no card (never sent to the acquirer).
        .exclude(failure_code="risk_blocked")
    )
    holds = RiskHold.objects.filter(lifted_at__isnull=True).filter(
        Q(customer_id=customer_id) | Q(kind=RiskHold.Kind.ADDRESS, address=address)
    )
    return {
        "card_failures": _count(failed.filter(payment_method__fingerprint=fingerprint)),
        "customer_failures": _count(failed.filter(payment_method__customer_id=customer_id)),
        "card_known": Exists(known),
        "customer_new_cards": _distinct(added, "customer_id", "fingerprint"),
        "address_other_cards": _distinct(from_address, "client_ip", "payment_method__fingerprint"),
        "on_hold": Exists(holds),
    }


def threshold_annotations() -> dict[str, Any]:
    """The thresholds as annotations of another model's query (None while the row of
    thresholds does not exist yet: ``services.ensure_risk_settings`` creates it)."""
    # The one row, as the lowest id (no parameter: the card payment's statement must keep
    # within psycopg's cache of parsed queries, at most 50 parameters).
    row = RiskSettings.objects.order_by("pk")
    return {
        name: Subquery(row.values(name)[:1], output_field=RiskSettings._meta.get_field(name))
        for name in THRESHOLDS
    }


THRESHOLDS = (
    "max_failed_attempts",
    "new_card_limits",
    "max_new_cards_per_customer",
    "max_new_cards_per_address",
    "min_card_amounts",
)


def risk_facts_queryset(
    fingerprint: str, customer_id: int, since: datetime.datetime, address: str
) -> QuerySet:
    return (
        RiskSettings.objects.filter(pk=RiskSettings.SINGLETON_PK)
        .annotate(**history_annotations(fingerprint, customer_id, since, address))
        .values(*FACTS)
        .order_by()
    )


FACTS = (
    *THRESHOLDS,
    "card_failures",
    "customer_failures",
    "card_known",
    "customer_new_cards",
    "address_other_cards",
    "on_hold",
)

# Compiled by the ORM once per process (db.compiled): building this query (its
# subqueries) cost 4.1 CPU-ms per card payment, a fifth of the payment's Python.
_facts = CompiledQuery(risk_facts_queryset, str, int, datetime.datetime, str)


def risk_facts(
    *, fingerprint: str, customer_id: int, since: datetime.datetime, address: str = ""
) -> RiskFacts | None:
    """The thresholds with the attempt's history, in one query (None if there is no row yet).

    Counted: ``card_failures`` and ``customer_failures`` (failed card payments since
    ``since`` for the card fingerprint, across all its tokens, and for the customer)
    and ``card_known`` (a payment with this card was captured for this customer before).
    One round trip per attempt: every card payment pays for it (docs/benchmarks.md).
    The ORM builds the query once per process (``_facts``).
    """
    row = _facts.first(fingerprint, customer_id, since, address or "")
    return facts_of(row) if row is not None else None


def facts_of(row: Mapping[str, Any]) -> RiskFacts:
    """The RiskFacts in a row of ``risk_facts_queryset``, or of any query annotated with
    ``threshold_annotations`` and ``history_annotations`` (which may hold more columns)."""
    facts = {name: row[name] for name in FACTS}
    # The ORM turns the JSON text into a dict on the way out, but not every backend does.
    for name in ("new_card_limits", "min_card_amounts"):
        if isinstance(facts[name], str):
            facts[name] = json.loads(facts[name])
    facts["on_hold"] = bool(facts["on_hold"])
    return RiskFacts(**facts)
