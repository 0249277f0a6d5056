"""Hand-made past payments and model versions for the fraud engine's tests."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import numpy as np

from billing.money import Money
from payments.fraud.features import attempt_features
from payments.fraud.features.compute import Attempt
from payments.fraud.features.offline import PastPayment
from payments.fraud.models import FraudModelVersion
from payments.fraud.simulator import SimulationSettings
from payments.fraud.training.train import serialize
from payments.models import Payment

T0 = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)
CARD = "a" * 64
OTHER_CARD = "b" * 64

SMALL = SimulationSettings(
    seed=11,
    weeks=4,
    customers=150,
    new_customers_per_week=4,
    card_testing_bursts=3,
    stolen_cards=14,
    compromised_cards=3,
    account_takeovers=12,
)


def past(at: datetime.datetime, **changes: Any) -> PastPayment:
    """A succeeded 100.00 SEK payment of customer c1 with CARD from 10.46.0.1 at ``at``."""
    outcome = {k: changes.pop(k) for k in ("status", "label", "card_added_at") if k in changes}
    attempt = Attempt(
        at=at,
        amount=10_000,
        currency="SEK",
        customer_id="c1",
        email="c1@example.se",
        billing_country="SE",
        card_fingerprint=CARD,
        card_bin="457100",
        card_brand="visa",
        ip="10.46.0.1",
        invoice_amount=40_000,
        invoice_sent_at=T0 - datetime.timedelta(days=40),
    )
    return PastPayment(
        attempt=dataclasses.replace(attempt, **changes),
        status=outcome.get("status", "succeeded"),
        card_added_at=outcome.get("card_added_at", T0 - datetime.timedelta(days=60)),
        payment_id=f"p{at.timestamp()}-{changes.get('customer_id', 'c1')}",
        label=outcome.get("label", "good"),
    )


def online(payment: Payment, at: datetime.datetime | None = None, **changes: Any) -> dict:
    """The database's features of an attempt like ``payment`` (its card, customer, invoice,
    address) at ``at`` (default: the payment's own time)."""
    amount = changes.pop("amount", Money(payment.amount, payment.currency))
    card = payment.payment_method
    assert card is not None
    return attempt_features(
        payment_method=card,
        customer_id=card.customer_id,
        amount=amount,
        invoice=payment.invoice,
        address=changes.pop("address", payment.client_ip),
        at=at or payment.created_at,
    )


def constant_version(like: FraudModelVersion) -> FraudModelVersion:
    """A version that scores every payment alike (worse than any real model), with the
    holdout of ``like``."""
    from sklearn.dummy import DummyClassifier

    estimator = DummyClassifier(strategy="prior").fit(
        np.zeros((4, len(like.features))), [0, 0, 0, 1]
    )
    blob, sha256 = serialize(
        {"estimator": estimator, "features": like.features, "reference": [0.0] * len(like.features)}
    )
    fields = {
        f.name: getattr(like, f.name)
        for f in FraudModelVersion._meta.concrete_fields
        if f.name not in ("id", "live", "promoted_at", "promoted_by", "promote_reason")
    }
    return FraudModelVersion.objects.create(
        **{**fields, "algorithm": "constant", "model_bytes": blob, "model_sha256": sha256}
    )
