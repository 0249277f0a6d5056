"""The fraud features' names and meanings: what rules may name and what the model trains on.

One registry (``FEATURES``) for both: the rule language refuses a name not listed here,
and the model's columns are the listed ``number`` and ``bool`` features marked ``model``.
The windowed counts follow one pattern, ``{key}_{measure}_{window}``: keys ``card`` (the
card's fingerprint, every token of it), ``customer``, ``ip`` and ``email`` (every customer
with the same email address); windows ``10m``, ``1h``, ``1d`` and ``30d`` on the edges of
UTC time buckets (``BUCKETS``): "10m" is the attempt's minute and the 9 minutes before it,
"1h" its minute and the 59 before, "1d" its hour and the 23 before, "30d" its day and the
29 before; each holds the attempts before this one (``window_start``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

Kind = Literal["number", "bool", "text"]

KEYS = ("card", "customer", "ip", "email")
# The counters' time buckets (UTC): "m" minutes, "h" hours, "d" days.
RESOLUTIONS: dict[str, datetime.timedelta] = {
    "m": datetime.timedelta(minutes=1),
    "h": datetime.timedelta(hours=1),
    "d": datetime.timedelta(days=1),
}
# Each window: its buckets' resolution and how many (the attempt's own bucket included).
BUCKETS: dict[str, tuple[str, int]] = {
    "10m": ("m", 10),
    "1h": ("m", 60),
    "1d": ("h", 24),
    "30d": ("d", 30),
}
WINDOWS = tuple(BUCKETS)
FAILURE_WINDOWS = ("1h", "1d")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def bucket_start(at: datetime.datetime, resolution: str) -> datetime.datetime:
    """The start of the UTC bucket (minute, hour or day) that holds ``at``."""
    since = at - _EPOCH
    seconds = since.days * 86400 + since.seconds
    step = int(RESOLUTIONS[resolution].total_seconds())
    return _EPOCH + datetime.timedelta(seconds=seconds - seconds % step)


def window_start(window: str, at: datetime.datetime) -> datetime.datetime:
    """Where ``window`` of an attempt at ``at`` begins: the start of its first bucket."""
    resolution, count = BUCKETS[window]
    return bucket_start(at, resolution) - (count - 1) * RESOLUTIONS[resolution]


# Distinct cards (fingerprints) per customer, IP and email, and distinct customers per card.
DISTINCT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # feature prefix: (key, what is counted, windows)
    "customer_cards": ("customer", "card", ("1h", "1d", "30d")),
    "ip_cards": ("ip", "card", ("1h", "1d")),
    "email_cards": ("email", "card", ("1d",)),
    "card_customers": ("card", "customer", ("1d", "30d")),
}
_WHOSE = {
    "card": "with this card (any token of its fingerprint)",
    "customer": "by this customer",
    "ip": "from this network address",
    "email": "by customers with this email address",
}
_SPANS = {
    "10m": "this minute and the 9 before it",
    "1h": "this minute and the 59 before it",
    "1d": "this hour and the 23 before it",
    "30d": "this day and the 29 before it (UTC)",
}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its kind, what it means and its unit; ``model``: a column of the model."""

    kind: Kind
    description: str
    unit: str = ""
    model: bool = True


def _build() -> dict[str, FeatureSpec]:
    features: dict[str, FeatureSpec] = {
        "amount": FeatureSpec(
            "number", "the attempt's amount in its own currency", "major units", model=False
        ),
        "amount_eur": FeatureSpec(
            "number", "the attempt's amount at the fixed reference rates", "EUR"
        ),
        "currency": FeatureSpec("text", "the attempt's currency (ISO 4217)", model=False),
        "amount_to_invoice_ratio": FeatureSpec(
            "number", "the attempt's amount over the invoice's total", "ratio"
        ),
        "invoice_age_hours": FeatureSpec(
            "number", "time since the invoice was sent (none if it never was)", "hours"
        ),
        "customer_payments_before": FeatureSpec(
            "number", "payments of the customer captured before", "payments"
        ),
        "customer_first_payment": FeatureSpec(
            "bool", "the customer has no captured payment before this one"
        ),
        "customer_amount_zscore": FeatureSpec(
            "number",
            "the amount against the customer's captured payments: (amount - mean) / standard"
            " deviation (0 with fewer than two, or all equal)",
            "standard deviations",
        ),
        "customer_amount_ratio_to_max": FeatureSpec(
            "number",
            "the amount over the customer's largest captured payment (none without one)",
            "ratio",
        ),
        "card_age_days": FeatureSpec(
            "number", "time since the card (its fingerprint) was first added to the vault", "days"
        ),
        "card_new_for_customer": FeatureSpec(
            "bool", "no payment with this card was captured for this customer before"
        ),
        "card_brand": FeatureSpec("text", "the card's brand (visa, mastercard, ...)", model=False),
        "card_bin": FeatureSpec("text", "the card's first six digits (BIN)", model=False),
        "card_country": FeatureSpec(
            "text", "the card's country from the BIN table (none if unknown)", model=False
        ),
        "billing_country": FeatureSpec(
            "text", "the customer's country (ISO 3166 alpha-2)", model=False
        ),
        "ip_country": FeatureSpec(
            "text", "the payer's country from the network table (none if unknown)", model=False
        ),
        "email_domain": FeatureSpec("text", "the customer's email domain", model=False),
        "card_country_mismatch": FeatureSpec(
            "bool", "the card's country is known and differs from the billing country"
        ),
        "ip_country_mismatch": FeatureSpec(
            "bool", "the network address's country is known and differs from the billing country"
        ),
        "card_ip_country_mismatch": FeatureSpec(
            "bool", "both are known and the card's country differs from the address's"
        ),
    }
    for key in KEYS:
        for window in WINDOWS:
            features[f"{key}_attempts_{window}"] = FeatureSpec(
                "number",
                f"card payment attempts {_WHOSE[key]} in {_SPANS[window]}",
                "attempts",
            )
            features[f"{key}_amount_{window}"] = FeatureSpec(
                "number",
                f"the amount of those attempts at the fixed reference rates ({_SPANS[window]})",
                "EUR",
            )
        for window in FAILURE_WINDOWS:
            features[f"{key}_failures_{window}"] = FeatureSpec(
                "number",
                f"failed card payments {_WHOSE[key]} in {_SPANS[window]}",
                "attempts",
            )
    for prefix, (key, counted, windows) in DISTINCT.items():
        for window in windows:
            what = "different cards" if counted == "card" else "different customers"
            features[f"{prefix}_{window}"] = FeatureSpec(
                "number",
                f"{what} in the attempts {_WHOSE[key]} in {_SPANS[window]}",
                "cards" if counted == "card" else "customers",
            )
    return features


FEATURES: dict[str, FeatureSpec] = _build()
MODEL_FEATURES: tuple[str, ...] = tuple(
    name for name, spec in FEATURES.items() if spec.model and spec.kind != "text"
)
