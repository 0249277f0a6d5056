"""Fraud reports: the figures of one selector, for the admin and the quarterly review."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from payments import services
from payments.fraud.labels import record_label
from payments.fraud.models import RiskEvaluation
from payments.fraud.reports import fraud_report
from payments.fraud.rule_services import add_list_entry, create_fraud_rule
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


@pytest.fixture
def month(
    make_open_invoice: Callable[..., Invoice],
    alice_company: object,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    analyst: User,
    admin_client_for: Callable[[User], Client],
) -> list[Payment]:
    """Four attempts: allowed (later fraud), allowed (good), held then approved (good),
    blocked by a list (later labelled good: a false block)."""
    from tests.factories import line

    card = saved_card(APPROVED)

    def pay(amount: int, n: int) -> Payment:
        invoice = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])
        return services.pay_invoice(
            invoice, amount=sek(amount), payment_method=card, idempotency_key=key(n), by=alice
        )

    stolen, fine = pay(100, 1), pay(110, 2)
    rule = create_fraud_rule(
        action="review", expression="amount == 120", description="odd", enabled=True, by=analyst
    )
    held = pay(120, 3)
    admin_client_for(analyst).post(
        reverse("admin:payments_payment_risk_review", args=[held.pk]),
        {"decision": "approve", "reason": "called"},
    )
    assert rule.pk
    add_list_entry(list="block", key="email_domain", value="alice.example", reason="x", by=analyst)
    blocked = pay(130, 4)
    record_label(stolen, label="fraud", source="chargeback", by=analyst)
    record_label(fine, label="good", source="confirmed", by=analyst)
    record_label(blocked, label="good", source="confirmed", by=analyst)
    RiskEvaluation.objects.filter(payment=stolen).update(score=80)
    RiskEvaluation.objects.filter(payment=fine).update(score=70)
    return [stolen, fine, held, blocked]


def test_the_figures_of_a_period(month: list[Payment]) -> None:
    now = timezone.now()
    report = fraud_report(now - datetime.timedelta(days=1), now + datetime.timedelta(minutes=1))

    totals = report["totals"]
    assert (totals["attempts"], totals["blocked"], totals["reviewed"]) == (4, 1, 1)
    assert (totals["approved_after_review"], totals["fraud_later"], totals["blocked_good"]) == (
        1,
        1,
        1,
    )
    assert totals["false_block_rate"] == round(1 / 3, 4)  # 1 of the 3 not labelled fraud
    # Scored and labelled: 80 (fraud) and 70 (good), both at or above the review score 65.
    assert (totals["precision"], totals["recall"]) == (0.5, 1.0)
    assert [row["attempts"] for row in report["periods"]] == [4]


def test_months_and_weeks_group_the_same_attempts(month: list[Payment]) -> None:
    now = timezone.now()
    start = now - datetime.timedelta(days=40)
    for period in ("week", "month"):
        report = fraud_report(start, now + datetime.timedelta(minutes=1), period=period)
        assert sum(row["attempts"] for row in report["periods"]) == 4


def test_the_quarterly_review_reads_the_fraud_report(month: list[Payment]) -> None:
    from audit.reviews.selectors import payments_and_fraud

    now = timezone.now()
    section = payments_and_fraud(now - datetime.timedelta(days=7), now + datetime.timedelta(1))

    assert section["fraud"]["totals"]["fraud_later"] == 1
    assert section["fraud"]["period"] == "week"
