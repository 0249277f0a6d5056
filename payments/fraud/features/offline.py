"""The raw aggregates of each attempt in a time-ordered stream of past payments (a CSV or
the simulator), kept per key in memory: the same aggregates ``online`` reads from the
database, handed to the same ``compute.derive``.

An attempt sees only payments strictly before it, in windows on the same UTC bucket edges
as the database's counters (``registry.window_start``): payments with the same timestamp
are added to the state once time moves past them. A failure counts at its attempt's time.
"""

from __future__ import annotations

import bisect
import csv
import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from billing.exceptions import BillingError
from billing.money import normalize_currency
from payments.exceptions import InvalidPaymentHistory
from payments.fraud.features.compute import CAPTURED, FAILED, Attempt, derive, to_eur
from payments.fraud.features.registry import DISTINCT, FAILURE_WINDOWS, WINDOWS, window_start
from security import csvfiles

LABELS = ("fraud", "good", "")
STATUSES = ("succeeded", "failed", "refunded", "partially_refunded", "pending", "unknown")
CSV_COLUMNS = (
    "payment_id",
    "created_at",
    "customer_id",
    "email",
    "billing_country",
    "card_fingerprint",
    "card_bin",
    "card_brand",
    "card_added_at",
    "client_ip",
    "amount",
    "currency",
    "status",
    "invoice_amount",
    "invoice_sent_at",
    "label",
    "scenario",
)
REQUIRED_COLUMNS = (
    "created_at",
    "customer_id",
    "email",
    "card_fingerprint",
    "amount",
    "currency",
    "status",
)


@dataclass(frozen=True)
class PastPayment:
    """One past card payment attempt: what the features need, its outcome and label."""

    attempt: Attempt
    status: str
    card_added_at: datetime.datetime | None = None
    payment_id: str = ""
    label: str = ""
    scenario: str = ""


@dataclass
class _KeyHistory:
    """One key's payments in time order, with running totals: a window's count, amount and
    failures are two binary searches and three subtractions, however long the history."""

    times: list[datetime.datetime] = field(default_factory=list)
    amounts: list[float] = field(default_factory=lambda: [0.0])  # running sum before i
    failures: list[int] = field(default_factory=lambda: [0])
    cards: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)

    def add(
        self, at: datetime.datetime, eur: float, failed: bool, card: str, customer: str
    ) -> None:
        self.times.append(at)
        self.amounts.append(self.amounts[-1] + eur)
        self.failures.append(self.failures[-1] + failed)
        self.cards.append(card)
        self.customers.append(customer)

    def since(self, start: datetime.datetime) -> int:
        """The index of the first payment at or after ``start``."""
        return bisect.bisect_left(self.times, start)


@dataclass
class _History:
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    largest: float | None = None


@dataclass
class OfflineFeatures:
    """Feed past payments in time order: ``features(p)`` before ``add(p)`` for each."""

    recent: dict[tuple[str, str], _KeyHistory] = field(default_factory=dict)
    history: dict[str, _History] = field(default_factory=dict)
    captured_cards: dict[tuple[str, str], int] = field(default_factory=dict)
    card_added: dict[str, datetime.datetime] = field(default_factory=dict)
    pending: list[PastPayment] = field(default_factory=list)

    def _keys(self, attempt: Attempt) -> dict[str, str]:
        keys = {"card": attempt.card_fingerprint, "customer": attempt.customer_id}
        if attempt.ip:
            keys["ip"] = attempt.ip
        if attempt.email:
            keys["email"] = attempt.email
        return keys

    def _flush(self, before: datetime.datetime) -> None:
        if self.pending and self.pending[0].attempt.at < before:
            for past in self.pending:
                self._commit(past)
            self.pending = []

    def _commit(self, past: PastPayment) -> None:
        attempt = past.attempt
        eur = to_eur(attempt.amount, attempt.currency)
        for key, value in self._keys(attempt).items():
            self.recent.setdefault((key, value), _KeyHistory()).add(
                attempt.at,
                eur,
                past.status == FAILED,
                attempt.card_fingerprint,
                attempt.customer_id,
            )
        if past.status in CAPTURED:
            seen = self.history.setdefault(attempt.customer_id, _History())
            seen.count += 1
            seen.total += eur
            seen.squares += eur * eur
            seen.largest = eur if seen.largest is None else max(seen.largest, eur)
            pair = (attempt.customer_id, attempt.card_fingerprint)
            self.captured_cards[pair] = self.captured_cards.get(pair, 0) + 1

    def features(self, past: PastPayment) -> dict[str, Any]:
        """The features of ``past`` from the payments added before it."""
        attempt = past.attempt
        self._flush(attempt.at)
        added = past.card_added_at or attempt.at
        known = self.card_added.get(attempt.card_fingerprint)
        self.card_added[attempt.card_fingerprint] = added if known is None else min(known, added)
        raw: dict[str, Any] = {}
        for key, value in self._keys(attempt).items():
            raw |= self._windowed(key, self.recent.get((key, value)), attempt.at)
        seen = self.history.get(attempt.customer_id, _History())
        raw |= {
            "hist_count": seen.count,
            "hist_sum": seen.total,
            "hist_sumsq": seen.squares,
            "hist_max": seen.largest,
            "card_captured": self.captured_cards.get(
                (attempt.customer_id, attempt.card_fingerprint), 0
            ),
            "card_added_at": self.card_added[attempt.card_fingerprint],
        }
        return derive(attempt, raw)

    def add(self, past: PastPayment) -> None:
        """Count ``past`` for the attempts after it (once time moves past its timestamp)."""
        self._flush(past.attempt.at)
        self.pending.append(past)

    def _windowed(
        self, key: str, history: _KeyHistory | None, at: datetime.datetime
    ) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        history = history if history is not None else _KeyHistory()
        end = len(history.times)
        for window in WINDOWS:
            start = history.since(window_start(window, at))
            raw[f"{key}_attempts_{window}"] = end - start
            raw[f"{key}_amount_{window}"] = history.amounts[end] - history.amounts[start]
            if window in FAILURE_WINDOWS:
                raw[f"{key}_failures_{window}"] = history.failures[end] - history.failures[start]
        for prefix, (owner, counted, windows) in DISTINCT.items():
            if owner == key:
                values = history.cards if counted == "card" else history.customers
                for window in windows:
                    start = history.since(window_start(window, at))
                    raw[f"{prefix}_{window}"] = len(set(values[start:end]))
        return raw


def stream_features(
    payments: Iterable[PastPayment],
) -> Iterator[tuple[PastPayment, dict[str, Any]]]:
    """Each past payment (in time order) with its features, as the database would give them."""
    state = OfflineFeatures()
    for past in sorted(payments, key=lambda p: p.attempt.at):
        yield past, state.features(past)
        state.add(past)


def _when(value: str, line: int, column: str) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPaymentHistory(
            f"line {line}: {column} {value!r} is not an ISO 8601 time", field=column
        ) from None
    if parsed.tzinfo is None:
        raise InvalidPaymentHistory(
            f"line {line}: {column} {value!r} has no time zone (write +00:00 or Z)", field=column
        )
    return parsed


def _whole(value: str, line: int, column: str, *, positive: bool) -> int | None:
    if not value:
        return None
    if not value.isdigit() or (positive and int(value) <= 0):
        raise InvalidPaymentHistory(
            f"line {line}: {column} {value!r} is not a whole number of minor units above 0",
            field=column,
        )
    return int(value)


def read_csv(stream: IO[str]) -> list[PastPayment]:
    """Past payments from a CSV in the documented format (docs/fraud.md), in time order.
    A row that does not follow it raises InvalidPaymentHistory naming its line and column."""
    reader = csv.DictReader(stream)
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidPaymentHistory(f"missing column {missing[0]}", field=missing[0])
    rows = []
    for line, row in enumerate(reader, start=2):
        get = {column: (row.get(column) or "").strip() for column in CSV_COLUMNS}
        for column in REQUIRED_COLUMNS:
            if not get[column]:
                raise InvalidPaymentHistory(f"line {line}: {column} is empty", field=column)
        if get["status"] not in STATUSES:
            raise InvalidPaymentHistory(
                f"line {line}: status {get['status']!r} is not one of {', '.join(STATUSES)}",
                field="status",
            )
        if get["label"] not in LABELS:
            raise InvalidPaymentHistory(
                f"line {line}: label {get['label']!r} is not fraud, good or empty", field="label"
            )
        try:
            currency = normalize_currency(get["currency"])
        except BillingError:
            raise InvalidPaymentHistory(
                f"line {line}: currency {get['currency']!r} is not ISO 4217", field="currency"
            ) from None
        at = _when(get["created_at"], line, "created_at")
        assert at is not None
        amount = _whole(get["amount"], line, "amount", positive=True)
        assert amount is not None
        attempt = Attempt(
            at=at,
            amount=amount,
            currency=currency,
            customer_id=get["customer_id"],
            email=get["email"],
            billing_country=get["billing_country"].upper(),
            card_fingerprint=get["card_fingerprint"],
            card_bin=get["card_bin"],
            card_brand=get["card_brand"],
            ip=get["client_ip"],
            invoice_amount=_whole(get["invoice_amount"], line, "invoice_amount", positive=True),
            invoice_sent_at=_when(get["invoice_sent_at"], line, "invoice_sent_at"),
        )
        rows.append(
            PastPayment(
                attempt=attempt,
                status=get["status"],
                card_added_at=_when(get["card_added_at"], line, "card_added_at"),
                payment_id=get["payment_id"],
                label=get["label"],
                scenario=get["scenario"],
            )
        )
    rows.sort(key=lambda p: p.attempt.at)
    return rows


def write_csv(payments: Iterable[PastPayment], stream: IO[str]) -> None:
    """Write past payments in the documented format (``read_csv`` reads them back)."""
    writer = csvfiles.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for past in payments:
        a = past.attempt
        writer.writerow(
            [
                past.payment_id,
                a.at.isoformat(),
                a.customer_id,
                a.email,
                a.billing_country,
                a.card_fingerprint,
                a.card_bin,
                a.card_brand,
                past.card_added_at.isoformat() if past.card_added_at else "",
                a.ip,
                a.amount,
                a.currency,
                past.status,
                a.invoice_amount or "",
                a.invoice_sent_at.isoformat() if a.invoice_sent_at else "",
                past.label,
                past.scenario,
            ]
        )
