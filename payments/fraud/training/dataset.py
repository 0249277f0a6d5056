"""Labelled payments as the model's matrix: features computed offline, in time order.

From a CSV or the simulator (``PastPayment`` rows), or from the database: every card
payment read in time order (``payments_from_database``) and streamed through the same
offline features, so that the features of a past payment are what the database would
have given when it was attempted (``online`` and ``offline`` agree: a test checks).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from django.db.models import OuterRef, Subquery

from payments.fraud.features.compute import Attempt
from payments.fraud.features.offline import PastPayment, stream_features
from payments.fraud.features.registry import MODEL_FEATURES
from payments.fraud.models import FraudLabel
from payments.fraud.scoring import vectorize


@dataclass(frozen=True)
class Dataset:
    """The labelled payments' features (rows in time order) and what is known of each."""

    features: list[str]
    matrix: np.ndarray
    labels: np.ndarray
    times: list[datetime.datetime]
    cards: list[str]
    scenarios: list[str]
    feature_rows: list[dict]

    def subset(self, mask: np.ndarray) -> Dataset:
        keep = np.flatnonzero(mask)
        return Dataset(
            features=self.features,
            matrix=self.matrix[keep],
            labels=self.labels[keep],
            times=[self.times[i] for i in keep],
            cards=[self.cards[i] for i in keep],
            scenarios=[self.scenarios[i] for i in keep],
            feature_rows=[self.feature_rows[i] for i in keep],
        )


def build_dataset(
    payments: Iterable[PastPayment],
    *,
    features: tuple[str, ...] = MODEL_FEATURES,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Stream every payment through the offline features; keep the labelled ones."""
    rows, labels, times, cards, scenarios = [], [], [], [], []
    for count, (past, computed) in enumerate(stream_features(payments), start=1):
        if progress is not None and count % 20000 == 0:
            progress(f"  features of {count:,} payments")
        if past.label not in ("fraud", "good"):
            continue
        rows.append(computed)
        labels.append(1 if past.label == "fraud" else 0)
        times.append(past.attempt.at)
        cards.append(past.attempt.card_fingerprint)
        scenarios.append(past.scenario)
    return Dataset(
        features=list(features),
        matrix=vectorize(rows, list(features)),
        labels=np.array(labels, dtype=np.int8),
        times=times,
        cards=cards,
        scenarios=scenarios,
        feature_rows=rows,
    )


def payments_from_database() -> Iterator[PastPayment]:
    """Every card payment in the database, in time order, with its latest fraud label."""
    from payments.models import Payment

    latest = FraudLabel.objects.filter(payment=OuterRef("pk")).order_by("-at", "-pk")
    rows = (
        Payment.objects.filter(method=Payment.Method.CARD, payment_method__isnull=False)
        .annotate(label=Subquery(latest.values("label")[:1]))
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "created_at",
            "amount",
            "currency",
            "status",
            "client_ip",
            "payment_method__customer_id",
            "payment_method__customer__email",
            "payment_method__customer__country",
            "payment_method__fingerprint",
            "payment_method__bin",
            "payment_method__brand",
            "payment_method__created_at",
            "invoice__gross_total",
            "invoice__finalized_at",
            "label",
        )
    )
    for (
        pk,
        at,
        amount,
        currency,
        status,
        ip,
        customer,
        email,
        country,
        fingerprint,
        bin_,
        brand,
        added,
        invoice_amount,
        sent,
        label,
    ) in rows.iterator(chunk_size=5000):
        yield PastPayment(
            attempt=Attempt(
                at=at,
                amount=amount,
                currency=currency,
                customer_id=str(customer),
                email=email,
                billing_country=country,
                card_fingerprint=fingerprint,
                card_bin=bin_,
                card_brand=brand,
                ip=ip,
                invoice_amount=invoice_amount or None,
                invoice_sent_at=sent,
            ),
            status=status,
            card_added_at=added,
            payment_id=str(pk),
            label=label or "",
        )
