"""The review queue: the held payment's score, reasons and customer history; approve,
decline and refund as fraud, each audited and fed back as a label."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from billing.models import Invoice
from payments import services
from payments.exceptions import RiskReviewRefused
from payments.fraud.models import FraudLabel
from payments.fraud.rule_services import create_fraud_rule
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import audit_events, make_user
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(
    analyst: User,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
) -> Payment:
    """400 SEK held by an analyst's rule."""
    create_fraud_rule(
        action="review",
        expression="amount > 300 and card_new_for_customer",
        description="a large first payment with a card",
        enabled=True,
        by=analyst,
    )
    payment = services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(400),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("held"),
        by=alice,
    )
    assert payment.awaiting_risk_review
    return payment


def review_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_risk_review", args=[payment.pk])


def test_the_review_page_shows_the_rule_matched_and_the_customer_history(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    page = admin_client_for(analyst).get(review_url(held)).content.decode()

    assert "a large first payment with a card (amount &gt; 300 and card_new_for_customer)" in page
    assert "No score (no live model)" in page
    assert "The customer&#x27;s history" in page or "The customer's history" in page


@pytest.mark.parametrize(("decision", "label"), [("approve", "good"), ("decline", "fraud")])
def test_a_decision_is_audited_and_becomes_a_label(
    held: Payment,
    analyst: User,
    admin_client_for: Callable[[User], Client],
    decision: str,
    label: str,
) -> None:
    response = admin_client_for(analyst).post(
        review_url(held), {"decision": decision, "reason": "called the customer"}
    )

    assert response.status_code == 302
    made = FraudLabel.objects.get(payment=held)
    assert (made.label, made.source, made.reason, made.by) == (
        label,
        "review",
        "called the customer",
        analyst,
    )
    assert audit_events(f"payment.risk_{decision}d", held)
    assert audit_events("fraud.payment_labelled", held)[0].details["label"] == label


def test_refund_as_fraud_refunds_through_the_refund_service_and_labels_fraud(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    client.post(review_url(held), {"decision": "approve", "reason": "looked fine"})
    url = reverse("admin:payments_payment_refund_as_fraud", args=[held.pk])

    response = client.post(url, {"reason": "cardholder reported the card stolen"})

    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.refunded_amount) == ("refunded", 40_000)
    [refund] = held.refunds.all()
    assert (refund.purpose, refund.reason) == ("reopen", "cardholder reported the card stolen")
    assert audit_events("payment.refunded_as_fraud", held)[0].details["refund_id"] == refund.pk
    latest = FraudLabel.objects.filter(payment=held).order_by("-at", "-pk")[0]
    assert (latest.label, latest.source) == ("fraud", "refund")


def test_refund_as_fraud_needs_a_reason_and_something_left(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    url = reverse("admin:payments_payment_refund_as_fraud", args=[held.pk])

    no_reason = client.post(url, {"reason": ""})
    not_captured = client.post(url, {"reason": "stolen"})

    assert no_reason.status_code == 200 and not_captured.status_code == 200
    assert "nothing of this payment is left to refund" in not_captured.content.decode()
    assert not held.refunds.exists()
    assert not FraudLabel.objects.filter(source="refund").exists()


def test_refund_as_fraud_refuses_who_is_not_a_fraud_analyst(held: Payment) -> None:
    operator = make_user("oscar", is_staff=True)
    operator.groups.add(Group.objects.get(name="Payments operator"))
    operator = User.objects.get(pk=operator.pk)

    with pytest.raises(RiskReviewRefused):
        services.refund_as_fraud(held, reason="stolen", by=operator, request=None)
    assert not held.refunds.exists()
