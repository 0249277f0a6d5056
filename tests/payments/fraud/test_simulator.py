"""The simulator: the same seed gives the same payments; the CSV round trip; the database
gives the same features as the stream (training/serving parity)."""

from __future__ import annotations

import dataclasses
import io
import random
from collections import Counter

import pytest

from payments.exceptions import InvalidPaymentHistory
from payments.fraud.features import read_csv, stream_features, write_csv
from payments.fraud.features.velocity import rebuild_velocity
from payments.fraud.simulator import SCENARIOS, simulate
from payments.fraud.simulator_db import load_simulation
from payments.fraud.training.dataset import payments_from_database
from payments.models import Payment
from tests.payments.fraud.helpers import SMALL, online


def test_the_same_seed_simulates_the_same_payments_and_another_seed_others() -> None:
    first, again = simulate(SMALL), simulate(SMALL)
    assert first == again
    other = simulate(dataclasses.replace(SMALL, seed=12))
    assert [p.attempt for p in other[:50]] != [p.attempt for p in first[:50]]


def test_every_scenario_and_the_legitimate_oddities_occur() -> None:
    payments = simulate(SMALL)
    scenarios = Counter(p.scenario for p in payments if p.label == "fraud")
    assert set(scenarios) == set(SCENARIOS)
    good = [p for p in payments if p.label == "good"]
    assert {p.attempt.currency for p in good} == {"SEK", "EUR"}
    assert any(p.status == "failed" for p in good)  # declines happen to good customers too
    assert any(p.attempt.ip.startswith("10.1.") for p in good)  # abroad, legitimately
    times = [p.attempt.at for p in payments]
    assert times == sorted(times)


def test_the_csv_round_trip_keeps_every_payment() -> None:
    payments = simulate(SMALL)
    stream = io.StringIO()
    write_csv(payments, stream)
    stream.seek(0)
    assert read_csv(stream) == payments


@pytest.mark.parametrize(
    ("change", "field", "line"),
    [
        (("amount", "-5"), "amount", 3),
        (("created_at", "2026-11-01T10:00:00"), "created_at", 3),
        (("currency", "XYZ"), "currency", 3),
        (("label", "maybe"), "label", 3),
        (("status", "done"), "status", 3),
        (("email", ""), "email", 3),
    ],
)
def test_a_bad_csv_row_is_refused_naming_its_line_and_column(
    change: tuple[str, str], field: str, line: int
) -> None:
    stream = io.StringIO()
    write_csv(simulate(SMALL)[:3], stream)
    rows = stream.getvalue().splitlines()
    header = rows[0].split(",")
    cells = rows[2].split(",")
    cells[header.index(change[0])] = change[1]
    rows[2] = ",".join(cells)
    with pytest.raises(InvalidPaymentHistory) as refused:
        read_csv(io.StringIO("\n".join(rows) + "\n"))
    assert refused.value.field == field
    assert f"line {line}" in str(refused.value)


def test_a_csv_without_a_required_column_is_refused() -> None:
    with pytest.raises(InvalidPaymentHistory, match="missing column amount"):
        read_csv(io.StringIO("created_at,customer_id,email,card_fingerprint,currency,status\n"))


@pytest.mark.django_db
def test_online_features_equal_offline_features_on_the_same_payments() -> None:
    payments = simulate(SMALL)
    ids = load_simulation(payments)
    offline = {past.payment_id: features for past, features in stream_features(payments)}
    sample = random.Random(3).sample(payments, 40)
    sample += [p for p in payments if p.label == "fraud"][:20]
    for past in sorted(sample, key=lambda p: p.attempt.at):
        payment = Payment.objects.select_related("payment_method", "invoice").get(
            pk=ids[past.payment_id]
        )
        rebuild_velocity(before=past.attempt.at)  # the counters as the attempt found them
        assert online(payment) == pytest.approx(offline[past.payment_id]), past.scenario
    # And the database read back as a stream (what training on the database uses).
    exported = {int(p.payment_id): f for p, f in stream_features(payments_from_database())}
    for past in sample:
        assert exported[ids[past.payment_id]] == pytest.approx(offline[past.payment_id])
