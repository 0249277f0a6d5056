"""Saving and deleting cards, attacked (issue 17, item 8): a customer without a second
factor must not end up with a saved card (whatever the form says), and nobody may be left
with a card they can never delete. The rule is payments/saved_cards.py, applied by the services."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.models import Invoice
from payments import services
from payments.exceptions import SavedCardRefused
from payments.gateways.models import SandboxCharge
from payments.models import CardSecret, Payment, PaymentMethod
from payments.saved_cards import delete_saved_card, save_card
from payments.vault import services as key_services
from payments.vault.entry import EncryptedCard
from security.models import User
from tests.mfa_helpers import give_totp_device
from tests.payments import conftest as payments_conftest
from tests.payments import fixtures as payment_fixtures
from tests.payments.fixtures import APPROVED, key, sek
from tests.payments.test_card_entry import sealed, session_payload

vault_keyring = payments_conftest.vault_keyring
thousand_sek_invoice = payment_fixtures.thousand_sek_invoice
saved_card = payment_fixtures.saved_card

pytestmark = pytest.mark.django_db


def _payload(client: Client) -> str:
    """The card form's payload as this client's session posts it (entry key, nonce)."""
    return session_payload(client, {"number": APPROVED, "expiry": "12/39", "cvc": "123"})


def _sealed(user: User) -> EncryptedCard:
    """What a card form sends for ``user`` (a nonce issued to the user and a session)."""
    return sealed(
        key_services.current_entry_key(),
        {"number": APPROVED, "expiry": "12/39", "cvc": "123"},
        user,
    )


def _password_only(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_ticking_a_disabled_save_box_by_hand_saves_nothing_and_charges_nothing(
    alice: User, thousand_sek_invoice: Invoice
) -> None:
    """The page disables the box for a customer without two-step sign-in; a forged POST
    sends it anyway. The service refuses the whole request on the field."""
    client = _password_only(alice)
    response = client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {
            "amount": "1000,00",
            "card_payload": _payload(client),
            "keep_card": "on",
            "idempotency_key": "f" * 32,
        },
    )

    assert response.status_code == 400
    assert not PaymentMethod.objects.exists()
    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()


def test_posting_a_card_to_the_card_page_without_a_second_factor_saves_nothing(
    alice: User,
) -> None:
    client = _password_only(alice)
    response = client.post(reverse("portal_pay:cards"), {"card_payload": _payload(client)})

    assert response.status_code == 400
    assert 'id="error-card"' in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_a_session_that_has_not_verified_its_factor_cannot_save_through_the_service(
    alice: User,
) -> None:
    give_totp_device(alice)  # enrolled, but this request never confirmed it
    request = RequestFactory().post("/portal/cards/")
    request.user = alice

    with pytest.raises(SavedCardRefused) as refused:
        save_card(_sealed(alice), by=alice, request=request)

    assert refused.value.field == "keep_card"
    assert not PaymentMethod.objects.exists()


def test_paying_and_saving_through_the_service_without_a_factor_is_refused(
    alice: User, thousand_sek_invoice: Invoice
) -> None:
    """An API or any other caller of the service meets the same rule as the pages."""
    with pytest.raises(SavedCardRefused):
        services.pay_invoice_with_new_card(
            thousand_sek_invoice,
            amount=sek(1000),
            card=_sealed(alice),
            keep_card=True,
            idempotency_key=key("api"),
            by=alice,
        )
    assert not PaymentMethod.objects.exists() and not Payment.objects.exists()


def test_a_customer_who_removed_their_factor_can_still_delete_their_card(
    alice: User, admin_client_for: Callable[[User], Client]
) -> None:
    """Saved with two-step sign-in, which she later turned off: not stuck with the card."""
    verified = admin_client_for(alice)
    verified.post(reverse("portal_pay:cards"), {"card_payload": _payload(verified)})
    card = PaymentMethod.objects.get()
    TOTPDevice.objects.filter(user=alice).delete()

    response = _password_only(alice).post(reverse("portal_pay:delete_card", args=[card.pk]))

    assert response["Location"] == reverse("portal_pay:cards")
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.DELETED
    assert not CardSecret.objects.filter(token=card.token).exists()


def test_bob_cannot_delete_alices_card_through_the_service(
    alice: User, bob: User, saved_card: Callable[[str], PaymentMethod]
) -> None:
    card = saved_card(APPROVED)

    with pytest.raises(SavedCardRefused) as refused:
        delete_saved_card(card.pk, by=bob, request=None)

    assert refused.value.field == "card"
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


def test_the_card_page_refuses_a_post_without_a_csrf_token(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post(reverse("portal_pay:cards"), {"card_payload": _payload(client)})

    assert response.status_code == 403
    assert not PaymentMethod.objects.exists()
