"""The payment events webhooks carry: succeeded, failed, refunded, held for review; each
with a snapshot that holds the card's brand and last four at most."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission

from billing.models import Invoice
from billing.webhooks.models import Event
from payments import services
from payments.fraud.services import update_risk_settings
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import make_user
from tests.payments.fixtures import APPROVED, DECLINED, key, sek
from tests.payments.test_refund_purposes import fresh_step_up

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def _pay(invoice: Invoice, card: PaymentMethod, by: User, k: str) -> Payment:
    return services.pay_invoice(
        invoice, amount=sek(1000), payment_method=card, idempotency_key=key(k), by=by
    )


def _events(payment: Payment) -> list[str]:
    return list(
        Event.objects.filter(object_id=f"payment_{payment.pk}")
        .order_by("id")
        .values_list("type", flat=True)
    )


def test_an_approved_payment_emits_succeeded_and_its_invoice_paid(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    payment = _pay(thousand_sek_invoice, saved_card(APPROVED), alice, "ok")

    assert _events(payment) == ["payment.succeeded"]
    event = Event.objects.get(type="payment.succeeded")
    assert event.customer_id == thousand_sek_invoice.customer_id
    assert event.data["amount"] == 100_000 and event.data["card_last4"] == APPROVED[-4:]
    assert APPROVED not in json.dumps(event.data)
    paid = Event.objects.get(type="invoice.paid")
    assert paid.object_id == f"invoice_{thousand_sek_invoice.pk}"


def test_a_declined_payment_emits_failed(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    payment = _pay(thousand_sek_invoice, saved_card(DECLINED), alice, "no")

    assert _events(payment) == ["payment.failed"]
    assert Event.objects.get(type="payment.failed").data["failure_code"] == payment.failure_code
    assert not Event.objects.filter(type="invoice.paid").exists()


def test_a_completed_refund_emits_refunded(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    payment = _pay(thousand_sek_invoice, saved_card(APPROVED), alice, "ok")
    operator = make_user("operator", is_staff=True)
    for codename in ("view_payment", "refund_payment"):
        operator.user_permissions.add(
            Permission.objects.get(content_type__app_label="payments", codename=codename)
        )
    operator = User.objects.get(pk=operator.pk)

    services.refund_payment(
        payment,
        amount=sek(400),
        reason="two seats returned",
        purpose="credit_note",
        by=operator,
        request=fresh_step_up(operator),
    )

    assert _events(payment) == ["payment.succeeded", "payment.refunded"]
    refunded = Event.objects.get(type="payment.refunded").data
    assert (refunded["status"], refunded["refunded_amount"]) == ("partially_refunded", 40_000)
    assert Event.objects.filter(type="invoice.credited").exists()


def test_a_payment_held_for_review_emits_held_for_review(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User, analyst: User
) -> None:
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )

    payment = _pay(thousand_sek_invoice, saved_card(APPROVED), alice, "held")

    assert payment.awaiting_risk_review
    assert _events(payment) == ["payment.held_for_review"]
