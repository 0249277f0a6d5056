"""The portal's paying pages: pay with a saved or a new (browser-encrypted) card, outcomes."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import audit_events
from tests.mfa_helpers import give_totp_device, mark_client_verified
from tests.payments.fixtures import APPROVED, DECLINED
from tests.payments.test_card_entry import form_payload

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def pay_url(invoice: Invoice) -> str:
    return reverse("portal_pay:pay", args=[invoice.pk])


def test_the_pay_page_offers_saved_cards_and_the_encrypted_card_form(
    alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    saved_card(APPROVED)

    page = alice_client.get(pay_url(thousand_sek_invoice)).content.decode()

    assert "•••• 4242" in page
    assert 'id="card-entry"' in page and 'data-public-key="' in page
    # Card inputs have no name: the browser can never submit them in the clear.
    assert not re.search(r'<input[^>]*name="[^"]*"[^>]*data-card-field', page)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script (CSP)
    assert 'value="1\u00a0000,00"' in page  # the amount as Alice (Swedish) writes it


def test_paying_with_a_saved_card_pays_the_invoice_and_shows_the_receipt(
    alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)

    response = alice_client.post(
        pay_url(thousand_sek_invoice),
        {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": "k" * 32},
    )

    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("portal_pay:payment", args=[payment.pk])
    assert payment.status == Payment.Status.SUCCEEDED
    outcome = alice_client.get(response["Location"]).content.decode()
    assert reverse("portal:receipt", args=[thousand_sek_invoice.pk]) in outcome
    receipt = alice_client.get(reverse("portal:receipt", args=[thousand_sek_invoice.pk]))
    assert receipt.status_code == 200
    assert "4242" in receipt.content.decode()


def test_paying_with_a_new_encrypted_card_without_keeping_it(
    alice_client: Client, thousand_sek_invoice: Invoice
) -> None:
    payload = form_payload(
        alice_client,
        pay_url(thousand_sek_invoice),
        {"number": APPROVED, "expiry": "12/39", "cvc": "123"},
    )

    response = alice_client.post(
        pay_url(thousand_sek_invoice),
        {"amount": "1000", "card_payload": payload, "idempotency_key": "n" * 32},
    )

    assert response.status_code == 302
    payment = Payment.objects.get()
    assert (payment.status, payment.card_last4) == (Payment.Status.SUCCEEDED, "4242")
    assert PaymentMethod.objects.get().status == PaymentMethod.Status.DELETED
    assert audit_events("vault.payment_method_deleted")


def test_a_double_submit_charges_once(
    alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    form = {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": "d" * 32}

    first = alice_client.post(pay_url(thousand_sek_invoice), form)
    second = alice_client.post(pay_url(thousand_sek_invoice), form)

    assert first["Location"] == second["Location"]
    assert SandboxCharge.objects.count() == 1


def test_a_declined_card_shows_why_and_offers_to_try_again(
    alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    card = saved_card(DECLINED)
    response = alice_client.post(
        pay_url(thousand_sek_invoice),
        {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": "x" * 32},
        follow=True,
    )
    page = response.content.decode()
    assert "Kortet nekades." in page  # Alice reads Swedish
    assert pay_url(thousand_sek_invoice) in page


@pytest.mark.parametrize(
    ("amount", "message"),
    # Alice reads Swedish: the service's errors reach her in Swedish.
    [("0", "större än noll"), ("-5", "större än noll"), ("1000.01", "mer än vad som återstår")],
)
def test_bad_amounts_are_refused_with_the_reason(
    alice_client: Client,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    amount: str,
    message: str,
) -> None:
    card = saved_card(APPROVED)
    response = alice_client.post(
        pay_url(thousand_sek_invoice),
        {"amount": amount, "payment_method": card.pk, "idempotency_key": "b" * 32},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Payment.objects.exists()


def test_a_paid_invoice_sends_the_payer_to_the_receipt(
    alice_client: Client, thousand_sek_invoice: Invoice, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    alice_client.post(
        pay_url(thousand_sek_invoice),
        {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": "p" * 32},
    )
    response = alice_client.get(pay_url(thousand_sek_invoice))
    assert response["Location"] == reverse("portal:receipt", args=[thousand_sek_invoice.pk])


def test_the_cards_page_shows_brand_last4_and_expiry_only(
    alice_client: Client, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    page = alice_client.get(reverse("portal_pay:cards")).content.decode()
    assert "•••• 4242" in page and "12/39" in page
    assert APPROVED not in page and card.token not in page


def test_deleting_a_card_needs_a_fresh_second_factor(
    alice: User, alice_client: Client, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    url = reverse("portal_pay:delete_card", args=[card.pk])
    device = give_totp_device(alice)
    mark_client_verified(alice_client, device)

    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=10)):
        stale = alice_client.post(url)
    mark_client_verified(alice_client, device)
    fresh = alice_client.post(url)

    assert stale.status_code == 302
    assert stale["Location"].startswith(reverse("security:step_up"))
    assert fresh["Location"] == reverse("portal_pay:cards")
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.DELETED
    assert audit_events("vault.payment_method_deleted", card)[0].actor_id == str(alice.pk)


def test_deleting_a_card_asks_for_confirmation_first_and_the_question_changes_nothing(
    alice: User, alice_client: Client, saved_card: Cards
) -> None:
    card = saved_card(APPROVED)
    mark_client_verified(alice_client, give_totp_device(alice))
    listing = alice_client.get(reverse("portal_pay:cards")).content.decode()
    url = reverse("portal_pay:delete_card", args=[card.pk])

    question = alice_client.get(url)

    # The list links to the question; the question asks before anything is deleted.
    assert f'href="{url}"' in listing and f'action="{url}"' not in listing
    page = question.content.decode()
    assert question.status_code == 200
    assert "Ta bort kortet som slutar på 4242?" in page
    assert f'<form method="post" action="{url}"' in page
    assert "Behåll kortet" in page
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE
    assert audit_events("vault.payment_method_deleted", card) == []


def test_the_security_page_states_live_facts(
    alice_client: Client, settings: object, saved_card: Cards
) -> None:
    saved_card(APPROVED)  # creates the first data key
    page = alice_client.get(reverse("portal_pay:security")).content.decode()
    assert "AES-256-GCM" in page and "Ed25519" in page
    assert "every 24 hours" in page or "var 24:e timme" in page
    assert "The key in use now was created" in page or "Nyckeln som används nu" in page
    assert "Two-step sign-in is off" in page or "Tvåstegsinloggning är avstängd" in page


class ProductionLikeGateway:
    """A configured gateway that is not the sandbox: it publishes no test cards."""

    name = "acquirer"


def test_the_pay_page_lists_the_test_cards_only_while_the_sandbox_is_the_gateway(
    alice_client: Client, thousand_sek_invoice: Invoice, settings: object
) -> None:
    url = pay_url(thousand_sek_invoice)

    sandbox = alice_client.get(url).content.decode()
    settings.PAYMENTS_GATEWAY = f"{__name__}.ProductionLikeGateway"  # type: ignore[attr-defined]
    other = alice_client.get(url).content.decode()

    assert 'id="test-cards"' in sandbox
    for number in ("4242 4242 4242 4242", "4000 0000 0000 0002", "4000 0000 0000 0119"):
        assert number in sandbox and number not in other
    assert 'id="test-cards"' not in other
