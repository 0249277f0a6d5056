"""The features of one attempt from its raw aggregates: the one derivation both sources share.

``online`` reads the raw aggregates from the database, ``offline`` from a time-ordered
stream of past payments (a CSV or the simulator); both hand them to ``derive`` with the
attempt, so a feature means the same when the model trains and when it scores.

Raw aggregates: every windowed and distinct feature of the registry (``{key}_attempts_1h``,
``customer_cards_30d``, ...) plus ``hist_count``, ``hist_sum``, ``hist_sumsq`` and
``hist_max`` (the customer's captured payments before, in EUR), ``card_captured`` (captured
payments with this card for this customer before) and ``card_added_at``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billing.money import currency_exponent
from payments.fraud.features.geo import card_country, ip_country
from payments.fraud.features.registry import DISTINCT, FAILURE_WINDOWS, KEYS, WINDOWS

# Fixed reference rates to EUR, so that amounts in different currencies add up and compare.
# Deliberately fixed (not today's rate): a feature must not move with the market between
# training and scoring. A currency not listed counts its minor units as euro cents (the
# database side computes this as one CASE over the listed currencies).
EUR_RATES: dict[str, float] = {
    "EUR": 1.0,
    "SEK": 0.087,
    "NOK": 0.085,
    "DKK": 0.134,
    "USD": 0.92,
    "GBP": 1.17,
}
CAPTURED = ("succeeded", "partially_refunded", "refunded")
FAILED = "failed"


def eur_factor(currency: str) -> float:
    """What one minor unit of ``currency`` is worth in EUR at the reference rate."""
    if currency not in EUR_RATES:
        return 0.01
    return EUR_RATES[currency] / 10 ** currency_exponent(currency)


def to_eur(amount_minor: int, currency: str) -> float:
    return amount_minor * eur_factor(currency)


@dataclass(frozen=True)
class Attempt:
    """What the reserve step knows of a card payment attempt (and a CSV row holds)."""

    at: datetime.datetime
    amount: int  # minor units
    currency: str
    customer_id: str
    email: str
    billing_country: str
    card_fingerprint: str
    card_bin: str = ""
    card_brand: str = ""
    ip: str = ""
    invoice_amount: int | None = None  # minor units
    invoice_sent_at: datetime.datetime | None = None


def raw_names() -> list[str]:
    """The raw aggregates' names that are features as they are (windowed and distinct)."""
    names = []
    for key in KEYS:
        for window in WINDOWS:
            names += [f"{key}_attempts_{window}", f"{key}_amount_{window}"]
        names += [f"{key}_failures_{window}" for window in FAILURE_WINDOWS]
    for prefix, (_key, _counted, windows) in DISTINCT.items():
        names += [f"{prefix}_{window}" for window in windows]
    return names


RAW_NAMES = tuple(raw_names())


def _mismatch(one: str | None, other: str | None) -> bool:
    return bool(one and other and one != other)


def derive(attempt: Attempt, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every feature of the registry for ``attempt`` from its raw aggregates."""
    amount_eur = to_eur(attempt.amount, attempt.currency)
    features: dict[str, Any] = {name: raw.get(name) or 0 for name in RAW_NAMES}
    for name in RAW_NAMES:
        if "_amount_" in name:
            features[name] = float(features[name])
    count = int(raw.get("hist_count") or 0)
    total = float(raw.get("hist_sum") or 0.0)
    squares = float(raw.get("hist_sumsq") or 0.0)
    largest = raw.get("hist_max")
    zscore = 0.0
    if count >= 2:
        mean = total / count
        std = math.sqrt(max(squares / count - mean * mean, 0.0))
        # Sums added in another order differ in the last bits: equal amounts stay "equal".
        if std > 1e-6 * max(1.0, abs(mean)):
            zscore = (amount_eur - mean) / std
    card_added = raw.get("card_added_at")
    bin_country = card_country(attempt.card_bin) if attempt.card_bin else None
    address_country = ip_country(attempt.ip) if attempt.ip else None
    billing = attempt.billing_country or None
    exponent = currency_exponent(attempt.currency)
    features.update(
        {
            "amount": attempt.amount / 10**exponent,
            "amount_eur": amount_eur,
            "currency": attempt.currency,
            "amount_to_invoice_ratio": (
                attempt.amount / attempt.invoice_amount if attempt.invoice_amount else None
            ),
            "invoice_age_hours": (
                (attempt.at - attempt.invoice_sent_at).total_seconds() / 3600
                if attempt.invoice_sent_at is not None
                else None
            ),
            "customer_payments_before": count,
            "customer_first_payment": count == 0,
            "customer_amount_zscore": zscore,
            "customer_amount_ratio_to_max": (
                amount_eur / float(largest) if largest and float(largest) > 0 else None
            ),
            "card_age_days": (
                max((attempt.at - card_added).total_seconds(), 0.0) / 86400
                if card_added is not None
                else 0.0
            ),
            "card_new_for_customer": not raw.get("card_captured"),
            "card_brand": attempt.card_brand or None,
            "card_bin": attempt.card_bin or None,
            "card_country": bin_country,
            "billing_country": billing,
            "ip_country": address_country,
            "email_domain": attempt.email.rpartition("@")[2].lower() or None,
            "card_country_mismatch": _mismatch(bin_country, billing),
            "ip_country_mismatch": _mismatch(address_country, billing),
            "card_ip_country_mismatch": _mismatch(bin_country, address_country),
        }
    )
    return features
