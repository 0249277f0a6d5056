"""The paying pages and the risk engine, in the customer's language: held, blocked, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Customer, Invoice
from payments.fraud import update_risk_settings
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, DECLINED

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


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
def review_above_500_sek(analyst: User) -> None:
    update_risk_settings(max_failed_attempts=5, new_card_limits={"SEK": 50_000}, by=analyst)


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


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("sv", ["Din betalning granskas.", "Inget har dragits ännu", "Granskas"]),
        ("en", ["Your payment is under review.", "Nothing has been charged yet", "Under review"]),
    ],
)
def test_a_held_payment_shows_under_review_and_nothing_charged(
    review_above_500_sek: None,
    alice_company: Customer,
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    language: str,
    expected: list[str],
) -> None:
    alice_company.language = language
    alice_company.save(update_fields=["language"])

    page = post_payment(
        alice_client, thousand_sek_invoice, saved_card(APPROVED), "1000", "r"
    ).content.decode()

    assert all(text in page for text in expected), page
    assert Payment.objects.get().awaiting_risk_review


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


def test_the_add_card_page_and_its_errors_are_in_the_customers_language(
    alice: User, admin_client_for: Callable[[User], Client]
) -> None:
    from payments.vault import keys
    from tests.payments.test_card_entry import browser_encrypt

    bad = browser_encrypt(
        keys.current_entry_key(), {"number": "4111111111111112", "expiry": "12/39", "cvc": "1"}
    )

    verified = admin_client_for(alice)  # saving a card wants her second factor
    response = verified.post(reverse("portal_pay:cards"), {"card_payload": bad})

    page = response.content.decode()
    assert response.status_code == 400
    assert '<html lang="sv">' in page and "Spara kortet" in page
    assert "kortnumret är ogiltigt (kontrollsiffran stämmer inte)" in page
