"""Fraud labels (the review queue's and the chargebacks' feedback) and the score thresholds."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from audit import SYSTEM
from payments.exceptions import InvalidFraudLabel, InvalidRiskSettings
from payments.fraud import update_risk_settings
from payments.fraud.labels import record_label
from payments.fraud.models import FraudLabel, RiskSettings
from payments.fraud.services import ensure_risk_settings, validate_scores
from payments.fraud.simulator_db import load_simulation
from payments.models import Payment
from security.models import User
from security.roles import ROLE_NAMES
from tests.factories import audit_events, make_user
from tests.payments.fraud.helpers import T0, past

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment() -> Payment:
    row = past(T0, label="")
    return Payment.objects.get(pk=load_simulation([row])[row.payment_id])


def test_an_analyst_labels_a_payment_and_the_label_is_audited(
    payment: Payment, analyst: User
) -> None:
    label = record_label(payment, label="fraud", source="review", reason=" stolen ", by=analyst)
    assert (label.label, label.source, label.reason, label.by) == (
        "fraud",
        "review",
        "stolen",
        analyst,
    )
    event = audit_events("fraud.payment_labelled", payment)[0]
    assert event.details == {"label": "fraud", "source": "review", "reason": "stolen"}


def test_the_system_labels_a_chargeback(payment: Payment) -> None:
    record_label(payment, label="fraud", source="chargeback", by=SYSTEM)
    assert FraudLabel.objects.get(payment=payment).by is None


@pytest.mark.parametrize(
    ("label", "source", "field"), [("maybe", "review", "label"), ("good", "guess", "source")]
)
def test_a_bad_label_is_refused_naming_the_field(
    payment: Payment, analyst: User, label: str, source: str, field: str
) -> None:
    with pytest.raises(InvalidFraudLabel) as refused:
        record_label(payment, label=label, source=source, by=analyst)
    assert refused.value.field == field
    assert not FraudLabel.objects.filter(payment=payment).exists()


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r != "Fraud analyst"])
def test_only_a_fraud_analyst_labels_payments(payment: Payment, role: str) -> None:
    user = make_user("someone", is_staff=role != "Customer")
    user.groups.add(Group.objects.get(name=role))
    with pytest.raises(InvalidFraudLabel, match="permission"):
        record_label(payment, label="good", source="review", by=User.objects.get(pk=user.pk))
    assert not FraudLabel.objects.filter(payment=payment).exists()


def test_score_thresholds_default_to_65_and_75() -> None:
    row = ensure_risk_settings()
    assert (row.review_score, row.block_score) == (65, 75)


@pytest.mark.parametrize(
    ("review", "block", "field"),
    [
        (-1, 75, "review_score"),
        (65, 100, "block_score"),
        (80, 75, "review_score"),
        (True, 75, "review_score"),
    ],
)
def test_a_score_threshold_outside_0_to_99_is_refused(
    review: object, block: object, field: str, analyst: User
) -> None:
    with pytest.raises(InvalidRiskSettings) as refused:
        validate_scores(review_score=review, block_score=block)
    assert refused.value.field == field
    row = ensure_risk_settings()
    with pytest.raises(InvalidRiskSettings):
        update_risk_settings(
            max_failed_attempts=row.max_failed_attempts,
            new_card_limits=row.new_card_limits,
            review_score=review,
            block_score=block,
            by=analyst,
        )
    assert RiskSettings.objects.get().block_score == 75


def test_lowering_the_score_thresholds_is_audited(analyst: User) -> None:
    row = ensure_risk_settings()
    update_risk_settings(
        max_failed_attempts=row.max_failed_attempts,
        new_card_limits=row.new_card_limits,
        review_score=50,
        block_score=70,
        by=analyst,
    )
    event = audit_events("fraud.risk_settings_changed")[-1]
    assert event.details["changes"]["block_score"] == {"before": 75, "after": 70}
    assert event.details["weakened"] == []


def test_raising_the_block_score_loosens_the_rules_and_needs_a_fresh_second_factor(
    analyst: User,
) -> None:
    row = ensure_risk_settings()
    with pytest.raises(InvalidRiskSettings):
        update_risk_settings(
            max_failed_attempts=row.max_failed_attempts,
            new_card_limits=row.new_card_limits,
            block_score=90,
            by=analyst,
        )
    assert RiskSettings.objects.get().block_score == 75


def test_labels_go_with_their_payments_when_the_invoice_retention_deletes_them(
    payment: Payment, analyst: User
) -> None:
    from payments.privacy import remove_for_invoice_deletion

    record_label(payment, label="good", source="review", by=analyst)
    done = remove_for_invoice_deletion([payment.invoice_id], by=SYSTEM)
    assert (done["fraud_labels"], done["payments"]) == (1, 1)
    assert not FraudLabel.objects.exists()
