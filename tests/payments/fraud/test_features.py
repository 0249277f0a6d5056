"""The fraud features: each window's boundary, the customer's history, the card, the
countries, the invoice, the same figures online and offline, bounded queries."""

from __future__ import annotations

import datetime

import pytest

from billing.money import Money
from payments.fraud.features import FEATURES, stream_features
from payments.fraud.features.offline import OfflineFeatures
from payments.fraud.features.registry import window_start
from payments.fraud.models import VelocityBucket
from payments.fraud.simulator_db import load_simulation
from payments.models import Payment
from tests.payments.fraud.helpers import OTHER_CARD, T0, online, past

pytestmark = pytest.mark.django_db

SECOND = datetime.timedelta(seconds=1)
MINUTE = datetime.timedelta(minutes=1)
TICK = datetime.timedelta(microseconds=1)


def offline_at(history: list, attempt) -> dict:
    state = OfflineFeatures()
    for row in history:
        state.features(row)
        state.add(row)
    return state.features(attempt)


@pytest.mark.parametrize("window", ["10m", "1h", "1d", "30d"])
def test_a_window_holds_what_is_at_its_first_buckets_start_and_not_a_microsecond_before(
    window: str,
) -> None:
    at = T0 + datetime.timedelta(days=45, hours=5, minutes=7, seconds=31)
    start = window_start(window, at)
    assert at == datetime.datetime(2026, 12, 17, 17, 7, 31, tzinfo=datetime.UTC)
    assert start == datetime.datetime(
        *{
            "10m": (2026, 12, 17, 16, 58),  # this minute and the 9 before it
            "1h": (2026, 12, 17, 16, 8),  # this minute and the 59 before it
            "1d": (2026, 12, 16, 18, 0),  # this hour and the 23 before it
            "30d": (2026, 11, 18, 0, 0),  # this day and the 29 before it
        }[window],
        tzinfo=datetime.UTC,
    )
    inside = past(start, status="failed")
    outside = past(start - TICK, customer_id="c2", email="c2@example.se")
    same_moment = past(at, customer_id="c3")  # not before the attempt: never counted
    history = [outside, inside, same_moment]
    ids = load_simulation(history, counters_before=at)
    attempt = Payment.objects.get(pk=ids[same_moment.payment_id])

    for features in (online(attempt, at), offline_at(history, past(at))):
        assert features[f"card_attempts_{window}"] == 1, features
        assert features[f"ip_attempts_{window}"] == 1
        assert features[f"card_customers_{window}"] == 1 if window in ("1d", "30d") else True
        assert features[f"card_amount_{window}"] == pytest.approx(100 * 0.087)
    assert online(attempt, at)[f"customer_attempts_{window}"] == 0  # c3 has no history


def test_failures_distinct_cards_and_customers_count_per_key() -> None:
    at = T0 + datetime.timedelta(days=45)
    history = [
        past(at - 5 * MINUTE, status="failed"),
        past(at - 4 * MINUTE, status="failed", card_fingerprint=OTHER_CARD),
        past(at - 3 * MINUTE, customer_id="c2", email="c1@example.se", ip="10.46.0.2"),
        past(at - 2 * MINUTE, customer_id="c3", email="c3@example.se", ip="10.46.0.1"),
    ]
    attempt = past(at, customer_id="c4", email="c1@example.se")  # c1's address, again
    ids = load_simulation([*history, attempt], counters_before=at)
    features = online(Payment.objects.get(pk=ids[attempt.payment_id]))
    assert features == pytest.approx(offline_at(history, attempt))
    assert features["card_failures_1h"] == 1
    assert features["card_customers_1d"] == 3  # c1, c2, c3 with CARD (c4 is the attempt)
    assert features["email_attempts_1h"] == 3  # c1 twice and c2 share the address
    assert features["email_cards_1d"] == 2
    assert features["ip_cards_1h"] == 2
    assert features["ip_failures_1h"] == 2
    assert features["customer_attempts_30d"] == 0


def test_amount_against_the_customers_history() -> None:
    history = [
        past(T0 + datetime.timedelta(days=d), amount=a) for d, a in ((1, 10_000), (2, 30_000))
    ]
    history.append(past(T0 + datetime.timedelta(days=3), amount=90_000, status="failed"))
    attempt = past(T0 + datetime.timedelta(days=4), amount=60_000)
    ids = load_simulation([*history, attempt], counters_before=attempt.attempt.at)
    features = online(Payment.objects.get(pk=ids[attempt.payment_id]))
    # Captured before: 10.00 and 30.00 EUR-equivalent thousandths; the failure is not history.
    mean, std = 20_000 * 0.087 / 100, 10_000 * 0.087 / 100
    assert features["customer_payments_before"] == 2
    assert features["customer_amount_zscore"] == pytest.approx((600 * 0.087 - mean) / std)
    assert features["customer_amount_ratio_to_max"] == pytest.approx(2.0)
    assert features["customer_first_payment"] is False
    assert features["amount"] == 600
    assert features["amount_to_invoice_ratio"] == pytest.approx(1.5)
    assert features == pytest.approx(offline_at(history, attempt))


def test_a_first_payment_on_a_new_card_from_abroad() -> None:
    at = T0 + datetime.timedelta(days=45)
    attempt = past(
        at,
        card_fingerprint=OTHER_CARD,
        card_bin="439200",  # NG in the example BIN table
        ip="10.1.2.3",  # US in the example network table
        card_added_at=at - datetime.timedelta(hours=36),
    )
    ids = load_simulation([attempt], counters_before=at)
    features = online(Payment.objects.get(pk=ids[attempt.payment_id]))
    assert features["customer_first_payment"] is True
    assert features["card_new_for_customer"] is True
    assert features["customer_amount_ratio_to_max"] is None
    assert features["card_age_days"] == pytest.approx(1.5)
    assert (features["card_country"], features["ip_country"], features["billing_country"]) == (
        "NG",
        "US",
        "SE",
    )
    assert features["card_country_mismatch"] and features["ip_country_mismatch"]
    assert features["card_ip_country_mismatch"]
    assert features["invoice_age_hours"] == pytest.approx(85 * 24)
    assert features["email_domain"] == "example.se"
    assert set(features) == set(FEATURES)


def test_the_features_take_three_queries_however_long_the_history(
    django_assert_num_queries,
) -> None:
    at = T0 + datetime.timedelta(days=20)
    few = [past(at - k * MINUTE) for k in range(1, 3)]
    many = [
        past(at - k * 15 * SECOND, customer_id="c2", card_fingerprint=OTHER_CARD)
        for k in range(1, 2000)
    ]
    attempt_few = past(at)
    attempt_many = past(at, customer_id="c2", card_fingerprint=OTHER_CARD)
    ids = load_simulation([*few, *many, attempt_few, attempt_many], counters_before=at)
    first = Payment.objects.select_related("payment_method", "invoice").get(
        pk=ids[attempt_few.payment_id]
    )
    second = Payment.objects.select_related("payment_method", "invoice").get(
        pk=ids[attempt_many.payment_id]
    )
    with django_assert_num_queries(3):
        assert online(first)["customer_attempts_1d"] == 2
    with django_assert_num_queries(3):
        assert online(second)["customer_attempts_1d"] == 1999
    # A long history is a bounded number of counter rows: at most 60 minutes, 24 hours
    # and 30 days a key, whatever its attempts.
    assert VelocityBucket.objects.filter(kind="card", key=OTHER_CARD).count() <= 60 + 24 + 30


def test_an_unknown_currency_counts_its_minor_units_as_cents_on_both_sides() -> None:
    history = [past(T0, amount=5_000, currency="PLN")]
    attempt = past(T0 + MINUTE, amount=2_000, currency="PLN")
    ids = load_simulation([*history, attempt], counters_before=attempt.attempt.at)
    features = online(Payment.objects.get(pk=ids[attempt.payment_id]))
    assert features["card_amount_1h"] == pytest.approx(50.0)
    assert features == pytest.approx(offline_at(history, attempt))
    assert online(Payment.objects.get(pk=ids[attempt.payment_id]), amount=Money(2_000, "PLN"))[
        "amount_eur"
    ] == pytest.approx(20.0)


def test_stream_features_orders_the_payments_by_time() -> None:
    later, earlier = past(T0 + MINUTE), past(T0)
    (first, f1), (second, f2) = list(stream_features([later, earlier]))
    assert (first, second) == (earlier, later)
    assert (f1["card_attempts_1h"], f2["card_attempts_1h"]) == (0, 1)
