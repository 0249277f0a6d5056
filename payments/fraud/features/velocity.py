"""The velocity counters: each key's card payment attempts by time bucket, written with the
payment and read as a bounded number of rows (docs/fraud.md, "Velocity counters").

Three tables (``payments.fraud.models``):

- ``VelocityBucket``: per key (card fingerprint, customer, network address, email's
  SHA-256) and UTC minute, hour and day: attempts, their amount in EUR, failures. A window
  (``registry.BUCKETS``) is at most 60 minute rows, 24 hour rows or 30 day rows of a key.
- ``VelocityPair``: a key seen with a card (a card with a customer) and when last, for
  the distinct counts; the customer's rows also count captured payments with the card.
- ``CustomerPaymentStats``: a customer's captured payments (count, sum, sum of squares,
  largest, in EUR).

Each event writes its rows in one statement (``db.counters``) in the transaction of the
payment's own write that causes it: ``count_attempt`` when the reserve step inserts the
payment, ``count_failure`` when it fails, ``count_capture`` when it is captured. Failures
count in the buckets of the attempt's own time (``created_at``), as ``offline`` counts them.
``rebuild_velocity`` builds the three tables from the payments (an upgrade, a bulk load).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import (
    Case,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Trunc
from django.utils import timezone

from audit import record
from db.compiled import compiled, insert_sql
from db.counters import Counters, add_to_counters
from db.dialect import insert_rows
from payments.fraud.features.compute import CAPTURED, EUR_RATES, FAILED, eur_factor, to_eur
from payments.fraud.features.registry import (
    BUCKETS,
    DISTINCT,
    FAILURE_WINDOWS,
    RESOLUTIONS,
    bucket_start,
    window_start,
)
from payments.fraud.models import (
    CustomerPaymentStats,
    RiskEvaluation,
    VelocityBucket,
    VelocityPair,
)
from payments.models import Payment
from security.actors import Actor

_BUCKET = VelocityBucket._meta.db_table
_PAIR = VelocityPair._meta.db_table
_STATS = CustomerPaymentStats._meta.db_table
# Which pair rows an attempt writes: (kind of the key, what it is seen with).
# The longest window of each resolution: the buckets that are read (and rebuilt).
LONGEST = ("1h", "1d", "30d")
PAIRS = tuple((owner, counted) for owner, counted, _windows in DISTINCT.values())


def email_key(email: str) -> str:
    """The email's key in the counters: its SHA-256 (the address is not stored again)."""
    return hashlib.sha256(email.encode()).hexdigest() if email else ""


@dataclass(frozen=True)
class Keys:
    """What an attempt counts by: its card's fingerprint, customer, address and email."""

    card: str
    customer: str
    ip: str = ""
    email: str = ""  # the clear address; stored as ``email_key``

    def items(self) -> list[tuple[str, str]]:
        values = {
            "card": self.card,
            "customer": self.customer,
            "ip": self.ip,
            "email": email_key(self.email),
        }
        return [(kind, value) for kind, value in values.items() if value]

    def value(self, kind: str) -> str:
        return dict(self.items()).get(kind, "")


def _bucket_rows(
    keys: Keys, at: datetime.datetime, *, attempts: int, eur: float, failures: int
) -> list[tuple[Any, ...]]:
    starts = {resolution: bucket_start(at, resolution) for resolution in RESOLUTIONS}
    return sorted(
        (kind, value, resolution, start, attempts, eur, failures)
        for kind, value in keys.items()
        for resolution, start in starts.items()
    )


def seen_minute(at: datetime.datetime) -> datetime.datetime:
    """A pair's ``last_seen``: the start of the minute of the attempt. Every window starts
    on a minute, so the distinct counts are the same as with the exact time; and the pair's
    row is rewritten with an unchanged indexed value within a minute, which PostgreSQL does
    in place (a heap-only update): one card paying many invoices a second adds no index
    entries that its next attempts' reads must step over."""
    return bucket_start(at, "m")


def _buckets(rows: list[tuple[Any, ...]]) -> Counters:
    return Counters(
        _BUCKET,
        unique=("kind", "key", "resolution", "start"),
        added=("attempts", "amount_eur", "failures"),
        rows=rows,
    )


def _pairs(rows: list[tuple[Any, ...]]) -> Counters:
    """Pair rows (kind, key, other, captured, the attempt's time), seen by the minute."""
    return Counters(
        _PAIR,
        unique=("kind", "key", "other"),
        added=("captured",),
        greatest=("last_seen",),
        rows=sorted((*row[:4], seen_minute(row[4])) for row in rows),
    )


def count_attempt(
    keys: Keys,
    *,
    at: datetime.datetime,
    amount: int,
    currency: str,
    failed: bool,
    evaluation: RiskEvaluation | None = None,
) -> None:
    """Count a card payment attempt just inserted (``failed``: blocked at once), and insert
    the engine's ``evaluation`` of it (if any) in the same statement: one round trip for
    the engine's writes of an attempt."""
    eur = to_eur(amount, currency)
    pairs = [
        (owner, keys.value(owner), keys.value(counted), 0, at)
        for owner, counted in PAIRS
        if keys.value(owner)
    ]
    add_to_counters(
        _buckets(_bucket_rows(keys, at, attempts=1, eur=eur, failures=int(failed))),
        _pairs(pairs),
        also=[insert_sql(evaluation)] if evaluation is not None else [],
    )


def count_failure(keys: Keys, *, at: datetime.datetime) -> None:
    """Count the failure of the attempt made at ``at`` (its ``created_at``)."""
    add_to_counters(_buckets(_bucket_rows(keys, at, attempts=0, eur=0.0, failures=1)))


def count_capture(keys: Keys, *, at: datetime.datetime, amount: int, currency: str) -> None:
    """Count the capture of the attempt made at ``at``: the customer's figures and its card."""
    eur = to_eur(amount, currency)
    add_to_counters(
        Counters(
            _STATS,
            unique=("customer_id",),
            added=("captured", "amount_eur", "amount_eur_squares"),
            greatest=("largest_eur",),
            rows=[(int(keys.customer), 1, eur, eur * eur, eur)],
        ),
        _pairs([("customer", keys.customer, keys.card, 1, at)]),
    )


@compiled(int)
def _payment_keys(pk: int) -> QuerySet:
    return Payment.objects.filter(pk=pk, payment_method__isnull=False).values(
        "payment_method__fingerprint",
        "payment_method__customer_id",
        "client_ip",
        "payment_method__customer__email",
    )


def count_outcome(payment: Payment) -> None:
    """Count a card payment's failure or capture, in the transaction that records it."""
    if payment.method != Payment.Method.CARD or payment.status not in (FAILED, *CAPTURED):
        return
    row = _payment_keys.first(payment.pk)
    if row is None:
        return
    keys = Keys(
        card=row["payment_method__fingerprint"],
        customer=str(row["payment_method__customer_id"]),
        ip=row["client_ip"] or "",
        email=row["payment_method__customer__email"] or "",
    )
    if payment.status == FAILED:
        count_failure(keys, at=payment.created_at)
    else:
        count_capture(keys, at=payment.created_at, amount=payment.amount, currency=payment.currency)


# Reading: the windows of every key in two statements, bounded by the buckets and pairs.


def _windowed(starts: dict[str, datetime.datetime]) -> dict[str, Any]:
    aggregates: dict[str, Any] = {}
    for window, (resolution, _count) in BUCKETS.items():
        inside = Q(resolution=resolution, start__gte=starts[window])
        aggregates[f"attempts_{window}"] = Sum("attempts", filter=inside)
        aggregates[f"amount_{window}"] = Sum("amount_eur", filter=inside)
        if window in FAILURE_WINDOWS:
            aggregates[f"failures_{window}"] = Sum("failures", filter=inside)
    return aggregates


def _of_keys(card: str, customer: str, ip: str, email: str) -> Q:
    return (
        Q(kind="card", key=card)
        | Q(kind="customer", key=customer)
        | Q(kind="ip", key=ip)
        | Q(kind="email", key=email)
    )


def buckets_query(
    card: str, customer: str, ip: str, email: str, *times: datetime.datetime
) -> QuerySet:
    """Every key's windows: one row per kind of key, from at most 114 buckets each."""
    at, *window_starts = times
    starts = dict(zip(BUCKETS, window_starts, strict=True))
    # Compiled once (db.compiled): the arguments are placeholders here, never compared.
    covered = Q()
    for window in LONGEST:
        covered |= Q(resolution=BUCKETS[window][0], start__gte=starts[window])
    return (
        VelocityBucket.objects.filter(_of_keys(card, customer, ip, email), covered, start__lte=at)
        .order_by()
        .values("kind")
        .annotate(**_windowed(starts))
    )


def pairs_query(
    card: str, customer: str, ip: str, email: str, *times: datetime.datetime
) -> QuerySet:
    """Every key's distinct counts: one row per kind, from the pairs seen in 30 days."""
    starts = dict(zip(BUCKETS, times, strict=True))
    return (
        VelocityPair.objects.filter(
            _of_keys(card, customer, ip, email), last_seen__gte=starts["30d"]
        )
        .order_by()
        .values("kind")
        .annotate(
            **{
                f"seen_{window}": Count("pk", filter=Q(last_seen__gte=start))
                for window, start in starts.items()
            }
        )
    )


def window_times(at: datetime.datetime) -> tuple[datetime.datetime, ...]:
    """Each window's start for an attempt at ``at``, in ``BUCKETS``' order."""
    return tuple(window_start(window, at) for window in BUCKETS)


def raw_from_rows(buckets: Iterable[dict[str, Any]], pairs: Iterable[dict[str, Any]]) -> dict:
    """The windowed and distinct raw aggregates (``compute``) from the two reads' rows."""
    raw: dict[str, Any] = {}
    for row in buckets:
        kind = row["kind"]
        for window in BUCKETS:
            raw[f"{kind}_attempts_{window}"] = row[f"attempts_{window}"] or 0
            raw[f"{kind}_amount_{window}"] = row[f"amount_{window}"] or 0.0
        for window in FAILURE_WINDOWS:
            raw[f"{kind}_failures_{window}"] = row[f"failures_{window}"] or 0
    seen = {row["kind"]: row for row in pairs}
    for prefix, (owner, _counted, windows) in DISTINCT.items():
        for window in windows:
            raw[f"{prefix}_{window}"] = (seen.get(owner) or {}).get(f"seen_{window}") or 0
    return raw


def purge_velocity(*, by: Actor, now: datetime.datetime | None = None) -> dict[str, int]:
    """Delete the buckets no window reads any more (minutes past an hour, hours past a day,
    days past 30) and the pairs unseen for 30 days that count no capture. Audited
    ``fraud.velocity_purged`` when it deleted any."""
    now = now or timezone.now()
    stale = Q()
    for window in LONGEST:
        stale |= Q(resolution=BUCKETS[window][0], start__lt=window_start(window, now))
    with transaction.atomic():
        buckets, _ = VelocityBucket.objects.filter(stale).delete()
        pairs, _ = VelocityPair.objects.filter(
            last_seen__lt=window_start("30d", now), captured=0
        ).delete()
        if buckets or pairs:
            record("fraud.velocity_purged", actor=by, buckets=buckets, pairs=pairs)
    return {"buckets": buckets, "pairs": pairs}


# Building the counters from the payments (an upgrade, a bulk load of past payments).


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


_KEY_FIELDS = {
    "card": "payment_method__fingerprint",
    "customer": "payment_method__customer_id",
    "ip": "client_ip",
    "email": "payment_method__customer__email",
}


def _key_value(kind: str, value: Any) -> str:
    if kind == "email":
        return email_key(value or "")
    return "" if value is None else str(value)


def rebuild_velocity(
    *,
    before: datetime.datetime | None = None,
    progress: Callable[[str], None] | None = None,
    by: Actor | None = None,
) -> dict[str, int]:
    """Build the counters from the card payments made before ``before`` (default now),
    replacing what they held; only the buckets and pairs a window at ``before`` can still
    read. In one transaction: run it when no card payment is being taken (an upgrade).
    Returns the rows written per table; audited ``fraud.velocity_rebuilt`` when ``by``
    (a bulk load of simulated payments audits itself)."""
    before = before or timezone.now()
    say = progress or (lambda _message: None)
    payments = Payment.objects.filter(
        method=Payment.Method.CARD, payment_method__isnull=False, created_at__lt=before
    ).order_by()
    written = {"buckets": 0, "pairs": 0, "customers": 0}
    with transaction.atomic():
        for model in (VelocityBucket, VelocityPair, CustomerPaymentStats):
            model.objects.all().delete()
        for kind, field in _KEY_FIELDS.items():
            for window in LONGEST:
                resolution = BUCKETS[window][0]
                rows = (
                    payments.filter(created_at__gte=window_start(window, before))
                    .annotate(
                        bucket=Trunc(
                            "created_at",
                            {"m": "minute", "h": "hour", "d": "day"}[resolution],
                            tzinfo=datetime.UTC,
                        )
                    )
                    .values(field, "bucket")
                    .annotate(
                        n=Count("pk"), eur=Sum(_eur()), failed=Count("pk", filter=Q(status=FAILED))
                    )
                    .values_list(field, "bucket", "n", "eur", "failed")
                )
                count = _write(
                    _BUCKET,
                    ("kind", "key", "resolution", "start", "attempts", "amount_eur", "failures"),
                    (
                        (kind, _key_value(kind, value), resolution, start, n, eur, failed)
                        for value, start, n, eur, failed in list(rows)
                        if _key_value(kind, value)
                    ),
                )
                written["buckets"] += count
                say(f"{kind} by {window} window ({resolution}): {count} buckets")
        for owner, counted in PAIRS:
            captured = Count("pk", filter=Q(status__in=CAPTURED)) if owner == "customer" else None
            seen = payments.values(_KEY_FIELDS[owner], _KEY_FIELDS[counted]).annotate(
                last=Max("created_at"), captured=captured or Value(0)
            )
            if owner != "customer":  # the customer's pairs count captures over all history
                seen = seen.filter(last__gte=window_start("30d", before))
            count = _write(
                _PAIR,
                ("kind", "key", "other", "last_seen", "captured"),
                (
                    (
                        owner,
                        _key_value(owner, key),
                        _key_value(counted, other),
                        seen_minute(last),
                        n,
                    )
                    for key, other, last, n in list(
                        seen.values_list(
                            _KEY_FIELDS[owner], _KEY_FIELDS[counted], "last", "captured"
                        )
                    )
                    if _key_value(owner, key)
                ),
            )
            written["pairs"] += count
            say(f"{owner} seen with a {counted}: {count} pairs")
        eur = _eur()
        stats = (
            payments.filter(status__in=CAPTURED)
            .values("payment_method__customer_id")
            .annotate(n=Count("pk"), total=Sum(eur), squares=Sum(eur * eur), largest=Max(eur))
            .values_list("payment_method__customer_id", "n", "total", "squares", "largest")
        )
        written["customers"] = _write(
            _STATS,
            ("customer_id", "captured", "amount_eur", "amount_eur_squares", "largest_eur"),
            list(stats),
        )
        say(f"captured history: {written['customers']} customers")
        if by is not None:
            record(
                "fraud.velocity_rebuilt",
                actor=by,
                before=before.isoformat(),
                buckets=written["buckets"],
                pairs=written["pairs"],
                customers=written["customers"],
            )
    return written


def _write(table: str, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY ``rows`` into ``table``: read in full before (a server-side cursor cannot be
    read on the connection while it copies)."""
    count = 0

    def counted() -> Iterable[tuple[Any, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    insert_rows(table, columns, counted())
    return count
