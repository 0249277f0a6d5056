"""The fraud tests' shared data: the small simulation and a version trained on it."""

from __future__ import annotations

import pytest

from payments.fraud.models import FraudModelVersion
from payments.fraud.simulator import simulate
from payments.fraud.training import train_model_version
from tests.payments.fraud.helpers import SMALL


@pytest.fixture(scope="module")
def small_payments() -> list:
    return simulate(SMALL)


@pytest.fixture
def trained(small_payments: list) -> FraudModelVersion:
    """A version trained on the small simulation (stored, not live)."""
    return train_model_version(small_payments, source="test", seed=5)
