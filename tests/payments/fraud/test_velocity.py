"""The velocity counters: written with each card payment in its own transaction, equal to
the counters rebuilt from the payments, bounded however long a key's history."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

from audit import SYSTEM
from billing.models import Customer, Invoice
from billing.money import Money
from payments import services
from payments.fraud.features import attempt_features
from payments.fraud.features.registry import bucket_start
from payments.fraud.features.velocity import (
    Keys,
    count_attempt,
    count_capture,
    email_key,
    purge_velocity,
    rebuild_velocity,
)
from payments.fraud.models import CustomerPaymentStats, VelocityBucket, VelocityPair
from payments.fraud.rule_services import add_list_entry
from payments.fraud.simulator_db import load_simulation
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import audit_events
from tests.payments.fixtures import APPROVED, DECLINED, key, sek
from tests.payments.fraud.helpers import T0, past

pytestmark = pytest.mark.django_db


def counters() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "buckets": sorted(
            VelocityBucket.objects.values_list(
                "kind", "key", "resolution", "start", "attempts", "amount_eur", "failures"
            )
        ),
        "pairs": sorted(
            VelocityPair.objects.values_list("kind", "key", "other", "last_seen", "captured")
        ),
        "customers": sorted(
            CustomerPaymentStats.objects.values_list(
                "customer_id", "captured", "amount_eur", "amount_eur_squares", "largest_eur"
            )
        ),
    }


def test_the_counters_written_with_card_payments_equal_those_rebuilt_from_the_payments(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    alice_company: Customer,
    analyst: User,
) -> None:
    good, bad = saved_card(APPROVED), saved_card(DECLINED)

    def pay(card: PaymentMethod, n: int) -> Payment:
        return services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(100),
            payment_method=card,
            idempotency_key=key(f"velocity-{n}"),
            by=alice,
        )

    statuses = [pay(good, 1).status, pay(bad, 2).status, pay(good, 3).status]
    add_list_entry(
        list="block", key="customer", value=str(alice_company.pk), reason="test", by=analyst
    )
    statuses.append(pay(good, 4).status)  # blocked: failed as it is inserted
    assert statuses == ["succeeded", "failed", "succeeded", "failed"]

    written = counters()
    minute = [row for row in written["buckets"] if row[:3] == ("card", good.fingerprint, "m")]
    assert [(row[4], row[6]) for row in minute] == [(3, 1)]  # 3 attempts, 1 failure (blocked)
    assert written["customers"][0][:2] == (alice_company.pk, 2)
    customer_pairs = [row for row in written["pairs"] if row[0] == "customer"]
    assert sorted((row[2], row[4]) for row in customer_pairs) == sorted(
        [(good.fingerprint, 2), (bad.fingerprint, 0)]
    )
    assert ("email", email_key(alice_company.email)) in {row[:2] for row in written["buckets"]}

    rebuild_velocity()
    rebuilt = counters()
    for table, rows in written.items():
        assert len(rows) == len(rebuilt[table]), table
        for mine, theirs in zip(rows, rebuilt[table], strict=True):
            exact = [(a, b) for a, b in zip(mine, theirs, strict=True) if not isinstance(a, float)]
            assert all(a == b for a, b in exact), (mine, theirs)
            floats = [(a, b) for a, b in zip(mine, theirs, strict=True) if isinstance(a, float)]
            assert all(a == pytest.approx(b) for a, b in floats), (mine, theirs)

    features = attempt_features(
        payment_method=good,
        customer_id=alice_company.pk,
        amount=sek(100),
        invoice=thousand_sek_invoice,
    )
    assert (features["card_attempts_10m"], features["customer_attempts_10m"]) == (3, 4)
    assert (features["customer_failures_1h"], features["customer_cards_1h"]) == (2, 2)
    assert features["customer_payments_before"] == 2
    assert features["card_new_for_customer"] is False


def test_a_card_testing_burst_counts_every_card_in_a_bounded_number_of_rows() -> None:
    at = T0 + datetime.timedelta(days=10)
    burst = [
        past(at - datetime.timedelta(seconds=s), card_fingerprint=f"{s:064x}", status="failed")
        for s in range(1, 301)
    ]
    attempt = past(at, card_fingerprint="f" * 64)
    ids = load_simulation([*burst, attempt], counters_before=at)
    payment = Payment.objects.select_related("payment_method", "invoice").get(
        pk=ids[attempt.payment_id]
    )
    assert payment.payment_method is not None
    features = attempt_features(
        payment_method=payment.payment_method,
        customer_id=payment.payment_method.customer_id,
        amount=Money(10_000, "SEK"),
        invoice=payment.invoice,
        address=payment.client_ip,
        at=at,
    )
    assert features["customer_cards_1h"] == 300
    assert features["ip_cards_1h"] == 300
    assert features["customer_failures_1h"] == 300
    assert features["customer_attempts_10m"] == 300
    # 300 attempts of one customer in five minutes: five minute rows, one hour, one day.
    customer_buckets = VelocityBucket.objects.filter(
        kind="customer", key=str(payment.payment_method.customer_id)
    )
    assert sorted(customer_buckets.values_list("resolution", "attempts")) == [
        ("d", 300),
        ("h", 300),
        *[("m", 60)] * 5,
    ]


def test_captures_add_up_and_keep_the_largest_amount() -> None:
    keys = Keys(card="c" * 64, customer="41", ip="", email="")
    for amount in (10_000, 50_000, 20_000):
        count_capture(keys, at=T0, amount=amount, currency="EUR")

    stats = CustomerPaymentStats.objects.get(customer_id=41)
    assert (stats.captured, stats.amount_eur, stats.largest_eur) == (3, 800.0, 500.0)
    assert stats.amount_eur_squares == pytest.approx(100**2 + 500**2 + 200**2)
    assert VelocityPair.objects.get(kind="customer", key="41").captured == 3


def test_the_purge_deletes_only_what_no_window_reads() -> None:
    now = T0 + datetime.timedelta(hours=12, minutes=30)  # 00:30 the next day
    keys = Keys(card="d" * 64, customer="42", ip="10.0.0.9", email="x@example.se")
    for at in (now - datetime.timedelta(days=31), now - datetime.timedelta(hours=2), now):
        count_attempt(keys, at=at, amount=1_000, currency="EUR", failed=False)
    count_capture(keys, at=now - datetime.timedelta(days=31), amount=1_000, currency="EUR")
    before = counters()

    purged = purge_velocity(by=SYSTEM, now=now)

    after = counters()
    kept = {(row[2], row[3]) for row in after["buckets"]}
    assert kept == {
        ("m", bucket_start(now, "m")),
        ("h", bucket_start(now - datetime.timedelta(hours=2), "h")),
        ("h", bucket_start(now, "h")),
        ("d", bucket_start(now - datetime.timedelta(hours=2), "d")),  # the day before
        ("d", bucket_start(now, "d")),
    }
    # Every pair was seen just now; the customer's keeps its capture of 31 days ago.
    assert len(after["pairs"]) == len(before["pairs"]) == 4
    assert purged["buckets"] == len(before["buckets"]) - len(after["buckets"]) > 0
    assert len(audit_events("fraud.velocity_purged")) == 1


def test_a_pair_is_seen_by_the_minute_and_counts_as_the_exact_time_would() -> None:
    """A pair's last_seen is the start of its attempt's minute (rewritten in place within a
    minute); every window starts on a minute, so the distinct counts do not change."""
    at = datetime.datetime(2026, 11, 2, 12, 34, 56, 789000, tzinfo=datetime.UTC)
    keys = Keys(card="card-a", customer="41", ip="203.0.113.9", email="a@example.com")
    count_attempt(keys, at=at, amount=100, currency="SEK", failed=False)
    count_attempt(
        keys, at=at + datetime.timedelta(seconds=2), amount=100, currency="SEK", failed=False
    )
    minute = datetime.datetime(2026, 11, 2, 12, 34, tzinfo=datetime.UTC)
    assert set(VelocityPair.objects.values_list("last_seen", flat=True)) == {minute}
    count_capture(keys, at=at, amount=100, currency="SEK")
    assert VelocityPair.objects.get(kind="customer", key="41").last_seen == minute
    # An hour's window of an attempt at 13:34:10 starts at 12:35: the pair seen at 12:34:56
    # is outside it, as with the exact time; one at 12:35:00.5 is inside.
    later = Keys(card="card-b", customer="41", ip="203.0.113.9", email="a@example.com")
    count_attempt(
        later, at=datetime.datetime(2026, 11, 2, 12, 35, 0, 500000, tzinfo=datetime.UTC),
        amount=100, currency="SEK", failed=False,
    )  # fmt: skip
    from payments.fraud.features import online, velocity

    now = datetime.datetime(2026, 11, 2, 13, 34, 10, tzinfo=datetime.UTC)
    values = [keys.value(kind) for kind in ("card", "customer", "ip", "email")]
    raw = velocity.raw_from_rows([], online._pairs.fetch(*values, *velocity.window_times(now)))
    assert raw["customer_cards_1h"] == 1  # card-b only
    assert raw["customer_cards_1d"] == 2
