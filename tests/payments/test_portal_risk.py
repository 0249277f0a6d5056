"""The paying pages and the risk engine, in the customer's language: held, blocked, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from billing.models import Customer, Invoice
from payments.fraud import update_risk_settings
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import make_user
from tests.payments.fixtures import APPROVED, DECLINED

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


@pytest.fixture
def alice_client(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def post_payment(client: Client, invoice: Invoice, card: PaymentMethod, amount: str, key: str):
    return client.post(
        reverse("portal_pay:pay", args=[invoice.pk]),
        {"amount": amount, "payment_method": card.pk, "idempotency_key": key * 32},
        follow=True,
    )


@pytest.fixture
def english(alice_company: Customer) -> None:
    alice_company.language = "en"
    alice_company.save(update_fields=["language"])


@pytest.fixture
def review_above_500_sek() -> None:
    fiona = make_user("fiona", is_staff=True)
    fiona.groups.add(Group.objects.get(name="Fraud analyst"))
    fiona = User.objects.get(pk=fiona.pk)
    update_risk_settings(max_failed_attempts=5, new_card_limits={"SEK": 50_000}, by=fiona)


def test_a_swedish_customer_reads_the_amount_error_in_swedish(
    alice_client: Client, alice_company: Customer, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    assert alice_company.language == "sv"

    response = post_payment(
        alice_client, thousand_sek_invoice, saved_card(APPROVED), "1000,01", "s"
    )

    assert response.status_code == 400
    assert (
        "1\xa0000,01 SEK är mer än vad som återstår att betala (1\xa0000,00 SEK)"
        in response.content.decode()
    )
    assert not Payment.objects.exists()


def test_an_english_customer_reads_it_in_english(
    english: None, alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    response = post_payment(
        alice_client, thousand_sek_invoice, saved_card(APPROVED), "1000.01", "e"
    )

    assert "1,000.01 SEK is more than is left to pay (1,000.00 SEK)" in response.content.decode()


def test_a_swedish_customer_reads_a_card_error_in_swedish(
    alice_client: Client, thousand_sek_invoice: Invoice
) -> None:
    response = alice_client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "1000", "card_payload": "not encrypted", "idempotency_key": "c" * 32},
    )

    assert response.status_code == 400
    assert "de krypterade kortuppgifterna saknas eller är felaktiga" in response.content.decode()


def test_a_held_payment_shows_under_review_and_nothing_charged(
    review_above_500_sek: None,
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
) -> None:
    page = post_payment(
        alice_client, thousand_sek_invoice, saved_card(APPROVED), "1000", "r"
    ).content.decode()

    assert "Din betalning granskas." in page
    assert "Inget har dragits ännu" in page
    assert "Granskas" in page  # the status line
    assert Payment.objects.get().awaiting_risk_review


def test_a_held_payment_in_english(
    english: None,
    review_above_500_sek: None,
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
) -> None:
    page = post_payment(
        alice_client, thousand_sek_invoice, saved_card(APPROVED), "1000", "h"
    ).content.decode()

    assert "Your payment is under review." in page


def test_a_blocked_payment_says_so_and_nothing_was_charged(
    alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    declined = saved_card(DECLINED)
    for n in "abcdef":
        post_payment(alice_client, thousand_sek_invoice, declined, "1000", n)

    page = post_payment(
        alice_client, thousand_sek_invoice, saved_card(APPROVED), "1000", "g"
    ).content.decode()

    assert "För din säkerhet stoppade vi betalningen" in page
    assert Payment.objects.filter(failure_code="risk_blocked").count() == 1
