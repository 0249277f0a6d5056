"""attempt_features on payments made through the card payment service."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from billing.models import Invoice
from payments import services
from payments.fraud.features import FEATURES, attempt_features
from payments.models import PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, DECLINED, key, sek

pytestmark = pytest.mark.django_db


def test_features_count_the_cards_payments_and_cover_the_registry(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    django_assert_num_queries,
) -> None:
    good, bad = saved_card(APPROVED), saved_card(DECLINED)
    services.pay_invoice(
        thousand_sek_invoice, amount=sek(100), payment_method=good, idempotency_key=key(1), by=alice
    )
    services.pay_invoice(
        thousand_sek_invoice, amount=sek(100), payment_method=bad, idempotency_key=key(2), by=alice
    )
    with django_assert_num_queries(4):  # no address: no query per IP
        features = attempt_features(
            payment_method=good,
            customer_id=thousand_sek_invoice.customer_id,
            amount=sek(200),
            invoice=thousand_sek_invoice,
        )
    assert set(features) == set(FEATURES)
    assert features["card_attempts_1h"] == 1
    assert features["customer_attempts_1h"] == 2
    assert features["customer_failures_1h"] == 1
    assert features["customer_cards_1d"] == 2
    assert features["customer_payments_before"] == 1
    assert features["card_new_for_customer"] is False
    assert features["amount"] == 200
    assert features["amount_to_invoice_ratio"] == pytest.approx(0.2)
