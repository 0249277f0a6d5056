"""The raw aggregates of an attempt read from the database: five queries, whatever the history.

Each key (card, customer, IP, email) is one aggregate query over that key's payments in
the last 30 days (the customer's over all its history, for the amount statistics), each
window a conditional aggregate (``COUNT(*) FILTER (WHERE created_at >= ...)``) found
through an index (``payments_payment_pm_time_idx``, ``payments_payment_ip_idx``,
``billing_customer_email_idx``); a fifth reads the customer's email and country and the
card's first time in the vault.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import (
    Case,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Min,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.money import Money
from db.compiled import CompiledQuery
from payments.fraud.features.compute import (
    CAPTURED,
    EUR_RATES,
    FAILED,
    Attempt,
    derive,
    eur_factor,
)
from payments.fraud.features.registry import DISTINCT, FAILURE_WINDOWS, WINDOWS
from payments.models import Payment
from payments.vault.models import PaymentMethod

_COUNTED = {"card": "payment_method__fingerprint", "customer": "payment_method__customer_id"}


def _eur() -> Case:
    """The payment's amount in EUR at the reference rates (as ``compute.to_eur``)."""
    return Case(
        *[
            When(
                currency=code,
                then=ExpressionWrapper(
                    F("amount") * Value(eur_factor(code)), output_field=FloatField()
                ),
            )
            for code in EUR_RATES
        ],
        default=ExpressionWrapper(F("amount") * Value(eur_factor("")), output_field=FloatField()),
        output_field=FloatField(),
    )


def _windowed(key: str, starts: dict[str, datetime.datetime]) -> dict[str, Any]:
    eur = _eur()
    aggregates: dict[str, Any] = {}
    for window in WINDOWS:
        recent = Q(created_at__gte=starts[window])
        aggregates[f"{key}_attempts_{window}"] = Count("pk", filter=recent)
        aggregates[f"{key}_amount_{window}"] = Sum(eur, filter=recent)
    for window in FAILURE_WINDOWS:
        aggregates[f"{key}_failures_{window}"] = Count(
            "pk", filter=Q(created_at__gte=starts[window], status=FAILED)
        )
    for prefix, (owner, counted, windows) in DISTINCT.items():
        if owner == key:
            for window in windows:
                aggregates[f"{prefix}_{window}"] = Count(
                    _COUNTED[counted], distinct=True, filter=Q(created_at__gte=starts[window])
                )
    return aggregates


def _card_payments(at: datetime.datetime) -> QuerySet:
    return Payment.objects.filter(
        method=Payment.Method.CARD, payment_method__isnull=False, created_at__lt=at
    ).order_by()


# Each key's query takes the attempt's time and the windows' starts (10m, 1h, 1d, 30d) as
# arguments of their own, so that the ORM builds it once per process (db.compiled): the
# five queries' dozens of conditional aggregates cost far more to build than to run.
_TIMES = (datetime.datetime,) * 5


def _per_key(key: str, lookup: str, value: Any, times: tuple[datetime.datetime, ...]) -> QuerySet:
    at, *starts = times
    return (
        _card_payments(at)
        .filter(created_at__gte=starts[-1], **{lookup: value})
        .values(lookup)
        .annotate(**_windowed(key, dict(zip(WINDOWS, starts, strict=True))))
    )


def _card_query(fingerprint: str, *times: datetime.datetime) -> QuerySet:
    return _per_key("card", "payment_method__fingerprint", fingerprint, times)


def _ip_query(address: str, *times: datetime.datetime) -> QuerySet:
    return _per_key("ip", "client_ip", address, times)


def _email_query(email: str, *times: datetime.datetime) -> QuerySet:
    return _per_key("email", "payment_method__customer__email", email, times)


def _customer_query(customer_pk: int, fingerprint: str, *times: datetime.datetime) -> QuerySet:
    """The customer's windows, and its captured payments over all its history."""
    at, *starts = times
    captured = Q(status__in=CAPTURED)
    eur = _eur()
    return (
        _card_payments(at)
        .filter(payment_method__customer_id=customer_pk)
        .values("payment_method__customer_id")
        .annotate(
            **_windowed("customer", dict(zip(WINDOWS, starts, strict=True))),
            hist_count=Count("pk", filter=captured),
            hist_sum=Sum(eur, filter=captured),
            hist_sumsq=Sum(eur * eur, filter=captured),
            hist_max=Max(eur, filter=captured),
            card_captured=Count("pk", filter=captured & Q(payment_method__fingerprint=fingerprint)),
        )
    )


def _context_query(customer_pk: int, fingerprint: str, at: datetime.datetime) -> QuerySet:
    first_added = (
        PaymentMethod.objects.filter(fingerprint=fingerprint, created_at__lte=at)
        .order_by()
        .values("fingerprint")
        .annotate(first=Min("created_at"))
        .values("first")[:1]
    )
    return (
        Customer.objects.filter(pk=customer_pk)
        .annotate(card_added_at=Subquery(first_added))
        .values("email", "country", "card_added_at")
        .order_by()
    )


_card = CompiledQuery(_card_query, str, *_TIMES)
_ip = CompiledQuery(_ip_query, str, *_TIMES)
_email = CompiledQuery(_email_query, str, *_TIMES)
_customer = CompiledQuery(_customer_query, int, str, *_TIMES)
_context = CompiledQuery(_context_query, int, str, datetime.datetime)


def raw_aggregates(attempt: Attempt, *, customer_pk: int) -> dict[str, Any]:
    """The raw aggregates of ``attempt`` (see ``compute``) from the payments before it."""
    times = (attempt.at, *(attempt.at - span for span in WINDOWS.values()))
    raw: dict[str, Any] = {}
    for row in (
        _card.first(attempt.card_fingerprint, *times),
        _customer.first(customer_pk, attempt.card_fingerprint, *times),
        _ip.first(attempt.ip, *times) if attempt.ip else None,
        _email.first(attempt.email, *times) if attempt.email else None,
    ):
        raw |= row or {}
    return raw


def attempt_features(
    *,
    payment_method: PaymentMethod,
    customer_id: int,
    amount: Money,
    invoice: Invoice,
    address: str = "",
    at: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Every feature of ``FEATURES`` for one card payment attempt, from the payments before
    ``at`` (default now): at most five queries however long the history (a test counts)."""
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
    context = _context.first(customer_id, payment_method.fingerprint, at) or {}
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
    raw = raw_aggregates(attempt, customer_pk=customer_id)
    raw["card_added_at"] = context.get("card_added_at")
    return attempt, derive(attempt, raw)
