"""The raw aggregates of an attempt read from the database: three queries, whatever the
history.

The velocity counters (``velocity``: buckets and pairs written with each payment) give
every key's windows in two queries of at most 114 buckets per key and the key's pairs
seen in 30 days; a third reads the customer's email and country, its captured history
(``CustomerPaymentStats``), the card's captured payments for it and the card's first time
in the vault. Each is compiled once per process (``db.compiled``).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Min, OuterRef, QuerySet, Subquery
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.money import Money
from db.compiled import CompiledQuery
from payments.fraud.features import velocity
from payments.fraud.features.compute import Attempt, derive
from payments.fraud.features.registry import BUCKETS
from payments.fraud.models import CustomerPaymentStats, VelocityPair
from payments.vault.models import PaymentMethod

# The attempt's time and each window's start (db.compiled: the statement is built once).
_TIMES = (datetime.datetime,) * (1 + len(BUCKETS))


def _context_query(
    customer_pk: int, customer: str, fingerprint: str, at: datetime.datetime
) -> QuerySet:
    first_added = (
        PaymentMethod.objects.filter(fingerprint=fingerprint, created_at__lte=at)
        .order_by()
        .values("fingerprint")
        .annotate(first=Min("created_at"))
        .values("first")[:1]
    )
    stats = CustomerPaymentStats.objects.filter(customer_id=OuterRef("pk"))
    captured = VelocityPair.objects.filter(kind="customer", key=customer, other=fingerprint)
    return (
        Customer.objects.filter(pk=customer_pk)
        .annotate(
            card_added_at=Subquery(first_added),
            hist_count=Subquery(stats.values("captured")[:1]),
            hist_sum=Subquery(stats.values("amount_eur")[:1]),
            hist_sumsq=Subquery(stats.values("amount_eur_squares")[:1]),
            hist_max=Subquery(stats.values("largest_eur")[:1]),
            card_captured=Subquery(captured.values("captured")[:1]),
        )
        .values(
            "email",
            "country",
            "card_added_at",
            "hist_count",
            "hist_sum",
            "hist_sumsq",
            "hist_max",
            "card_captured",
        )
        .order_by()
    )


_buckets = CompiledQuery(velocity.buckets_query, str, str, str, str, *_TIMES)
_pairs = CompiledQuery(velocity.pairs_query, str, str, str, str, *_TIMES[1:])
_context = CompiledQuery(_context_query, int, str, str, datetime.datetime)


def raw_aggregates(attempt: Attempt) -> dict[str, Any]:
    """The windowed and distinct raw aggregates of ``attempt`` (see ``compute``) from the
    velocity counters: two queries for every key."""
    keys = velocity.Keys(
        card=attempt.card_fingerprint,
        customer=attempt.customer_id,
        ip=attempt.ip,
        email=attempt.email,
    )
    values = [keys.value(kind) for kind in ("card", "customer", "ip", "email")]
    starts = velocity.window_times(attempt.at)
    return velocity.raw_from_rows(
        _buckets.fetch(*values, attempt.at, *starts), _pairs.fetch(*values, *starts)
    )


def attempt_features(
    *,
    payment_method: PaymentMethod,
    customer_id: int,
    amount: Money,
    invoice: Invoice,
    address: str = "",
    at: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Every feature of ``FEATURES`` for one card payment attempt at ``at`` (default now),
    from the velocity counters as they stand: three queries however long the history (a
    test counts)."""
    return read_attempt(
        payment_method=payment_method,
        customer_id=customer_id,
        amount=amount,
        invoice=invoice,
        address=address,
        at=at,
    )[1]


def read_attempt(
    *,
    payment_method: PaymentMethod,
    customer_id: int,
    amount: Money,
    invoice: Invoice,
    address: str = "",
    at: datetime.datetime | None = None,
) -> tuple[Attempt, dict[str, Any]]:
    """The attempt as the database describes it (the customer's email and country read
    with it) and its features: what ``attempt_features`` computes, with the attempt kept
    for the engine's lists, so the customer is not read twice."""
    at = at or timezone.now()
    context = _context.first(customer_id, str(customer_id), payment_method.fingerprint, at) or {}
    attempt = Attempt(
        at=at,
        amount=amount.amount,
        currency=amount.currency,
        customer_id=str(customer_id),
        email=context.get("email") or "",
        billing_country=context.get("country") or "",
        card_fingerprint=payment_method.fingerprint,
        card_bin=payment_method.bin,
        card_brand=payment_method.brand,
        ip=address or "",
        invoice_amount=invoice.gross_total or None,
        invoice_sent_at=invoice.finalized_at,
    )
    raw = raw_aggregates(attempt)
    for name in ("card_added_at", "hist_count", "hist_sum", "hist_sumsq", "hist_max"):
        raw[name] = context.get(name)
    raw["card_captured"] = context.get("card_captured") or 0
    return attempt, derive(attempt, raw)
