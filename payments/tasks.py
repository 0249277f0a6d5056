"""django-q2 jobs of payments: thin wrappers around the services."""

from __future__ import annotations

from audit import SYSTEM
from payments.services import purge_idempotency_keys, reconcile_payments


def reconcile_payments_task() -> dict[str, int]:
    """Every minute: settle unknown and stale pending payments by status lookup."""
    return reconcile_payments(by=SYSTEM)


def purge_idempotency_keys_task() -> int:
    """Hourly: forget idempotency keys past their retention (at least 24 hours)."""
    return purge_idempotency_keys(by=SYSTEM)


def purge_fraud_velocity_task() -> dict[str, int]:
    """Hourly: delete the fraud velocity counters no window reads any more."""
    from payments.fraud.features.velocity import purge_velocity

    return purge_velocity(by=SYSTEM)


def train_fraud_model_task() -> int:
    """Weekly: train a fraud model version on the labelled card payments (not promoted: a
    fraud analyst decides). Too few labels is no error: the next week may have them."""
    from payments.exceptions import FraudModelRefused
    from payments.fraud.training import train_model_version
    from payments.fraud.training.dataset import payments_from_database

    try:
        return train_model_version(payments_from_database(), source="database (weekly)").pk
    except FraudModelRefused:
        return 0
