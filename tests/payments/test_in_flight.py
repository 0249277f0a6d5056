"""No second payment while one is in flight: an invoice with a payment being confirmed
(pending, unknown) or held for review says so and takes no other payment until it is
settled, in the portal and in the service (which names the reason), also under a race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from billing.models import Invoice
from payments import services
from payments.exceptions import PaymentInProgress
from payments.fraud import update_risk_settings
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import ensure_default_series
from tests.payments.fixtures import APPROVED, TIMEOUT, key, sek

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def pay(invoice: Invoice, card: PaymentMethod, by: User, n: Any, amount: int = 1000) -> Payment:
    return services.pay_invoice(
        invoice, amount=sek(amount), payment_method=card, idempotency_key=key(n), by=by
    )


@pytest.fixture
def series() -> None:
    ensure_default_series()


@pytest.fixture
def unknown(thousand_sek_invoice: Invoice, saved_card: Cards, alice: User) -> Payment:
    """Alice's payment of 400 SEK whose answer was lost: charged, outcome unknown."""
    payment = pay(thousand_sek_invoice, saved_card(TIMEOUT), alice, "lost", amount=400)
    assert payment.status == Payment.Status.UNKNOWN
    return payment


def test_the_service_refuses_a_second_payment_while_one_is_being_confirmed(
    unknown: Payment, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    """Even for the 600 SEK the first payment leaves: it may still fail, or succeed."""
    with pytest.raises(PaymentInProgress) as refused:
        pay(thousand_sek_invoice, saved_card(APPROVED), alice, "second", amount=600)

    assert refused.value.field == "invoice"
    assert "being confirmed" in refused.value.message
    assert Payment.objects.count() == 1 and SandboxCharge.objects.count() == 1


def test_the_service_refuses_a_second_payment_while_one_is_under_review(
    analyst: User, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    update_risk_settings(max_failed_attempts=5, new_card_limits={"SEK": 50_000}, by=analyst)
    held = pay(thousand_sek_invoice, saved_card(APPROVED), alice, "big")
    assert held.awaiting_risk_review

    with pytest.raises(PaymentInProgress) as refused:
        pay(thousand_sek_invoice, saved_card(APPROVED), alice, "again", amount=100)

    assert "under review" in refused.value.message


def test_once_the_payment_in_flight_is_settled_the_rest_can_be_paid(
    unknown: Payment, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    services.reconcile_payments()  # the acquirer captured it: 400 paid, 600 left

    second = pay(thousand_sek_invoice, saved_card(APPROVED), alice, "rest", amount=600)

    assert second.status == Payment.Status.SUCCEEDED
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.PAID


def test_the_portal_shows_the_payment_in_flight_and_offers_no_second_one(
    unknown: Payment, thousand_sek_invoice: Invoice, alice_client: Client
) -> None:
    detail = alice_client.get(reverse("portal:invoice", args=[thousand_sek_invoice.pk]))
    pay_page = alice_client.get(reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]))
    listing = alice_client.get(reverse("portal:invoices"))

    pay_url = reverse("portal_pay:pay", args=[thousand_sek_invoice.pk])
    for page in (detail.content.decode(), pay_page.content.decode()):
        assert 'id="payment-in-flight"' in page
        assert reverse("portal_pay:payment", args=[unknown.pk]) in page
    assert f'href="{pay_url}"' not in detail.content.decode()
    assert 'id="card-entry"' not in pay_page.content.decode()
    assert 'id="pay-saved"' not in pay_page.content.decode()
    assert "badge-pending" in listing.content.decode()


def test_a_post_to_the_pay_page_meanwhile_is_refused_with_the_reason(
    unknown: Payment,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    alice_client: Client,
) -> None:
    card = saved_card(APPROVED)

    response = alice_client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "600,00", "payment_method": card.pk, "idempotency_key": "s" * 32},
    )

    assert response.status_code == 400
    assert 'class="error-summary"' in response.content.decode()
    assert Payment.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_racing_partial_payments_start_exactly_one(
    series: None, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    """Ten payments of 100 SEK at once on a 1,000 SEK invoice, the first of which never
    hears back: one is in flight, the nine others are refused before any charge."""
    card = saved_card(TIMEOUT)
    services.get_gateway_account()
    start = threading.Barrier(10)

    def attempt(n: int) -> str:
        try:
            start.wait()
            return pay(thousand_sek_invoice, card, alice, f"race-{n}", amount=100).status
        except PaymentInProgress:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(10)))

    assert sorted(outcomes) == ["refused"] * 9 + ["unknown"]
    assert SandboxCharge.objects.count() == 1
