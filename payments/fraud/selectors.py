"""Reads of the risk engine: its thresholds, and the facts one attempt is judged on."""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, IntegerField, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from payments.fraud.models import RiskSettings

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
    """The one row of thresholds, created with the defaults when missing."""
    row, _created = RiskSettings.objects.get_or_create(pk=RiskSettings.SINGLETON_PK)
    return row


def _count(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("status").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@dataclass(frozen=True)
class RiskFacts:
    """What one attempt is judged on: the thresholds and the card's and customer's history."""

    max_failed_attempts: int
    new_card_limits: dict[str, int]
    card_failures: int
    customer_failures: int
    card_known: bool


def _facts_queryset(fingerprint: str, customer_id: int, since: datetime.datetime) -> QuerySet:
    from payments.models import Payment

    failed = Payment.objects.filter(
        status=Payment.Status.FAILED, created_at__gte=since, payment_method__isnull=False
    ).exclude(failure_code__in=UNCOUNTED_FAILURES)
    known = Payment.objects.captured().filter(
        payment_method__fingerprint=fingerprint, payment_method__customer_id=customer_id
    )
    return (
        RiskSettings.objects.filter(pk=RiskSettings.SINGLETON_PK)
        .annotate(
            card_failures=_count(failed.filter(payment_method__fingerprint=fingerprint)),
            customer_failures=_count(failed.filter(payment_method__customer_id=customer_id)),
            card_known=Exists(known),
        )
        .values(*FACTS)
        .order_by()
    )


FACTS = (
    "max_failed_attempts",
    "new_card_limits",
    "card_failures",
    "customer_failures",
    "card_known",
)

# Stand-ins for the three values that change per attempt, to find their places among
# the compiled query's parameters (nothing else in the query can equal them).
_FINGERPRINT = "\x00risk-facts-fingerprint"
_CUSTOMER = -73_400_017
_SINCE = datetime.datetime(1901, 2, 3, 4, 5, 6, 789, tzinfo=datetime.UTC)


@functools.cache
def _compiled_facts(alias: str) -> tuple[str, tuple[Any, ...]]:
    """The facts query's SQL and parameter template, compiled by the ORM once per process
    (PostgreSQL, where values stay Python values until psycopg sends them).

    Compiling this query (three subqueries) cost 4.1 CPU-ms per card payment, a fifth of
    the payment's Python; the SQL is the same every time, only three values change.
    """
    sql, params = _facts_queryset(_FINGERPRINT, _CUSTOMER, _SINCE).query.sql_with_params()
    stand_ins = {_FINGERPRINT, _CUSTOMER, _SINCE}
    found = {p for p in params if isinstance(p, (str, int, datetime.datetime)) and p in stand_ins}
    if found != stand_ins:  # the ORM inlined one of them: this template cannot be used
        raise RuntimeError("risk facts: a per-attempt value is not a query parameter")
    return sql, tuple(params)


def risk_facts(*, fingerprint: str, customer_id: int, since: datetime.datetime) -> RiskFacts | None:
    """The thresholds with the attempt's history, in one query (None if there is no row yet).

    Counted: ``card_failures`` and ``customer_failures`` (failed card payments since
    ``since`` for the card fingerprint, across all its tokens, and for the customer)
    and ``card_known`` (a payment with this card was captured for this customer before).
    One round trip per attempt: every card payment pays for it (docs/benchmarks.md).
    The ORM builds the query once per process (``_compiled_facts``).
    """
    if connection.vendor != "postgresql":  # SQLite adapts values while compiling
        row = _facts_queryset(fingerprint, customer_id, since).first()
        return RiskFacts(**row) if row is not None else None
    sql, template = _compiled_facts(connection.alias)
    values: dict[Any, Any] = {_FINGERPRINT: fingerprint, _CUSTOMER: customer_id, _SINCE: since}
    params = [
        values[p] if isinstance(p, (str, int, datetime.datetime)) and p in values else p
        for p in template
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        facts = dict(zip([column.name for column in cursor.description], row, strict=True))
    # The ORM would have turned the JSON text into a dict on the way out: do the same.
    if isinstance(facts["new_card_limits"], str):
        facts["new_card_limits"] = json.loads(facts["new_card_limits"])
    return RiskFacts(**facts)
