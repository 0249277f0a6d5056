"""Backtesting: a candidate rule or threshold decided over stored evaluations equals a
direct computation over the same rows; the command and the admin page show it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import Invoice
from payments import services
from payments.fraud.backtest import CandidateRule, backtest
from payments.fraud.labels import record_label
from payments.fraud.models import RiskEvaluation
from payments.fraud.rule_services import check_rule_expression, create_fraud_rule
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db

AMOUNTS = [10, 20, 30, 40, 50, 60]


@pytest.fixture
def history(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    analyst: User,
) -> list[Payment]:
    """Six allowed payments; 50 and 60 SEK labelled fraud, 10 and 20 SEK labelled good."""
    card = saved_card(APPROVED)
    payments = [
        services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(amount),
            payment_method=card,
            idempotency_key=key(f"bt-{amount}"),
            by=alice,
        )
        for amount in AMOUNTS
    ]
    for payment in payments:
        label = {5000: "fraud", 6000: "fraud", 1000: "good", 2000: "good"}.get(payment.amount)
        if label:
            record_label(payment, label=label, source="review", reason="checked", by=analyst)
    return payments


def direct(action: str, holds: Callable[[dict], bool]) -> Counter:
    """Counted by hand over the stored rows: (decision, label) pairs."""
    from payments.fraud.models import FraudLabel

    labels = {}
    for payment_id, label in FraudLabel.objects.order_by("at", "pk").values_list(
        "payment_id", "label"
    ):
        labels[payment_id] = label
    counted: Counter = Counter()
    for evaluation in RiskEvaluation.objects.all():
        decision = action if holds(evaluation.features) else evaluation.decision
        counted[(decision, labels.get(evaluation.payment_id, "unlabelled"))] += 1
    return counted


def as_counter(result: dict) -> Counter:
    return Counter(
        {
            (outcome, label): n
            for outcome, labels in result.items()
            for label, n in labels.items()
            if label != "total" and n
        }
    )


def test_a_candidate_rule_counts_equal_a_direct_computation(history: list[Payment]) -> None:
    result = backtest(
        days=30,
        rule=CandidateRule(action="block", expression=check_rule_expression("amount >= 40")),
    )

    assert result.evaluations == len(AMOUNTS)
    assert as_counter(result.after.as_dict()) == direct("block", lambda f: f["amount"] >= 40)
    assert result.after.by_outcome["block"] == {"fraud": 2, "good": 0, "unlabelled": 1}
    assert result.before.by_outcome["allow"]["fraud"] == 2
    assert result.changed == 3


def test_a_rule_text_replacing_an_enabled_rule_is_tested_in_its_place(
    history: list[Payment], analyst: User
) -> None:
    enabled = create_fraud_rule(
        action="review", expression="amount > 0", description="all", enabled=True, by=analyst
    )

    result = backtest(
        days=30,
        rule=CandidateRule(
            action="review", expression=check_rule_expression("amount > 55"), replaces=enabled.pk
        ),
    )

    assert result.after.total("review") == 1
    assert as_counter(result.after.as_dict()) == direct("review", lambda f: f["amount"] > 55)


def test_thresholds_are_backtested_on_the_stored_scores(history: list[Payment]) -> None:
    # No model was live: give the stored evaluations scores as a live model would have.
    for evaluation in RiskEvaluation.objects.all():
        evaluation.score = int(evaluation.features["amount"])  # 10..60
        evaluation.save(update_fields=["score"])

    result = backtest(days=30, review_score=30, block_score=50)

    assert result.after.by_outcome["block"] == {"fraud": 2, "good": 0, "unlabelled": 0}
    assert result.after.by_outcome["review"] == {"fraud": 0, "good": 0, "unlabelled": 2}
    assert result.after.by_outcome["allow"] == {"fraud": 0, "good": 2, "unlabelled": 0}


def test_only_the_window_is_read(history: list[Payment]) -> None:
    import datetime

    from django.utils import timezone

    RiskEvaluation.objects.filter(payment=history[0]).update(
        created_at=timezone.now() - datetime.timedelta(days=40)
    )

    assert backtest(days=30).evaluations == len(AMOUNTS) - 1
    assert backtest(days=41).evaluations == len(AMOUNTS)


def test_the_command_prints_the_same_numbers_as_json(history: list[Payment]) -> None:
    out = StringIO()

    call_command("backtest_fraud", "--expression", "amount >= 40", "--action", "block", stdout=out)

    printed = json.loads(out.getvalue().splitlines()[-1])
    assert printed["after"]["block"] == {"fraud": 2, "good": 0, "unlabelled": 1, "total": 3}


def test_the_command_refuses_an_unknown_feature(db: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unknown feature 'nope'"):
        call_command("backtest_fraud", "--expression", "nope > 1", stdout=StringIO())
