"""Saved cards: a card is kept only when its customer asks (consent), only with two-step
sign-in, and whoever could save a card can always delete it (payments/saved_cards.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Invoice
from payments import services
from payments.exceptions import AmountExceedsDue, InvalidPayment, SavedCardRefused
from payments.gateways.models import SandboxCharge
from payments.models import CardSecret, Payment, PaymentMethod
from payments.saved_cards import delete_saved_card, save_card
from payments.selectors import saved_cards_for_user
from payments.vault import services as key_services
from payments.vault.entry import EncryptedCard
from security.models import User
from tests.factories import audit_events, line
from tests.mfa_helpers import give_totp_device
from tests.payments.fixtures import APPROVED, TIMEOUT, key, sek
from tests.payments.test_card_entry import sealed, session_payload

pytestmark = pytest.mark.django_db


def typed(by: User, number: str = APPROVED) -> EncryptedCard:
    """A card as the browser's card form sends it for ``by`` (encrypted to the current entry
    key, with the form's one-time nonce)."""
    return sealed(
        key_services.current_entry_key(), {"number": number, "expiry": "12/39", "cvc": "123"}, by
    )


def posted(client: Client) -> str:
    """The card form's payload as this client's session posts it."""
    return session_payload(client, {"number": APPROVED, "expiry": "12/39", "cvc": "123"})


def pay_new(
    invoice: Invoice, by: User, *, keep: bool, number: str = APPROVED, n: Any = 1
) -> Payment:
    return services.pay_invoice_with_new_card(
        invoice,
        amount=sek(1000),
        card=typed(by, number),
        keep_card=keep,
        idempotency_key=key(f"new-{n}"),
        by=by,
    )


def active_cards() -> list[PaymentMethod]:
    return list(PaymentMethod.objects.filter(status=PaymentMethod.Status.ACTIVE))


# --- consent: the box unticked keeps nothing -----------------------------------------


def test_paying_with_the_save_box_unticked_leaves_no_saved_card(
    alice: User, thousand_sek_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(alice)  # she may save cards: it is her choice that counts
    payload = posted(client)

    response = client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {"amount": "1000,00", "card_payload": payload, "idempotency_key": "u" * 32},
    )

    assert response.status_code == 302
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert active_cards() == []
    assert not saved_cards_for_user(alice).exists()
    cards_page = client.get(reverse("portal_pay:cards")).content.decode()
    assert "•••• 4242" not in cards_page


def test_paying_with_the_save_box_ticked_saves_the_card_for_a_customer_with_two_step_sign_in(
    alice: User, thousand_sek_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(alice)

    response = client.post(
        reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]),
        {
            "amount": "1000,00",
            "card_payload": posted(client),
            "keep_card": "on",
            "idempotency_key": "t" * 32,
        },
    )

    assert response.status_code == 302
    [card] = saved_cards_for_user(alice)
    assert card.last4 == "4242" and card.saved
    assert "•••• 4242" in client.get(reverse("portal_pay:cards")).content.decode()


def test_the_save_box_starts_unticked(
    alice: User, thousand_sek_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    page = admin_client_for(alice).get(reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]))

    box = page.content.decode().split('id="keep-card"')[1].split(">")[0]
    assert "checked" not in box and "disabled" not in box


def test_a_card_not_kept_is_never_offered_while_its_payment_is_unknown_and_is_erased_once_settled(
    alice: User, make_open_invoice: Callable[..., Invoice], alice_company: Any
) -> None:
    first = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])
    second = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])
    payment = pay_new(first, alice, keep=False, number=TIMEOUT)
    assert payment.status == Payment.Status.UNKNOWN
    card = PaymentMethod.objects.get()
    assert card.status == PaymentMethod.Status.ACTIVE  # the charge may still need it

    assert not saved_cards_for_user(alice).exists()
    with pytest.raises(InvalidPayment) as refused:
        services.pay_invoice(
            second, amount=sek(1000), payment_method=card, idempotency_key=key("other"), by=alice
        )
    assert refused.value.field == "payment_method"

    services.reconcile_payments()  # the acquirer says it was captured

    payment.refresh_from_db()
    card.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert card.status == PaymentMethod.Status.DELETED
    assert not CardSecret.objects.filter(token=card.token).exists()
    assert SandboxCharge.objects.count() == 1


def test_a_refused_payment_keeps_no_card_even_when_asked_to(
    alice: User, thousand_sek_invoice: Invoice
) -> None:
    give_totp_device(alice)
    with pytest.raises(AmountExceedsDue):
        services.pay_invoice_with_new_card(
            thousand_sek_invoice,
            amount=sek(2000),
            card=typed(alice),
            keep_card=True,
            idempotency_key=key("too-much"),
            by=alice,
        )
    assert active_cards() == []
    assert not Payment.objects.exists()


# --- the one rule for saving -----------------------------------------------------------


def test_without_two_step_sign_in_paying_and_saving_is_refused_and_nothing_happens(
    alice: User, thousand_sek_invoice: Invoice
) -> None:
    with pytest.raises(SavedCardRefused) as refused:
        pay_new(thousand_sek_invoice, alice, keep=True)

    assert refused.value.field == "keep_card"
    assert "two-step sign-in" in refused.value.message
    assert not PaymentMethod.objects.exists()
    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()
    assert not audit_events("vault.card_tokenized")


def test_without_two_step_sign_in_the_pay_page_states_the_rule_and_pays_without_saving(
    alice: User, thousand_sek_invoice: Invoice
) -> None:
    client = Client()
    client.force_login(alice)
    url = reverse("portal_pay:pay", args=[thousand_sek_invoice.pk])

    page = client.get(url).content.decode()
    paid = client.post(
        url, {"amount": "1000,00", "card_payload": posted(client), "idempotency_key": "p" * 32}
    )

    assert 'id="card-rule"' in page and 'id="mfa-needed"' in page
    box = page.split('id="keep-card"')[1].split(">")[0]
    assert "disabled" in box
    assert paid.status_code == 302
    assert active_cards() == []


def test_the_add_card_page_and_paying_apply_the_same_rule(
    alice: User, thousand_sek_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    """Both pages go through payments.saved_cards: with two-step sign-in both save, and the page
    that adds a card is the portal's card page, in the portal's layout."""
    client = admin_client_for(alice)

    page = client.get(reverse("portal_pay:cards")).content.decode()
    added = client.post(reverse("portal_pay:cards"), {"card_payload": posted(client)})

    assert 'id="card-entry"' in page and 'id="card-rule"' in page and 'class="site-header"' in page
    assert added.status_code == 302
    assert [c.last4 for c in saved_cards_for_user(alice)] == ["4242"]
    old_address = client.get("/payments/cards/new/")
    assert old_address.status_code == 302 and old_address["Location"] == reverse("portal_pay:cards")


def test_save_card_refuses_someone_who_is_no_customer(outsider: User) -> None:
    with pytest.raises(SavedCardRefused) as refused:
        save_card(typed(outsider), by=outsider, request=None)
    assert refused.value.field == "user"
    assert not PaymentMethod.objects.exists()


# --- deleting: the same level as saving ------------------------------------------------


def test_a_customer_without_a_second_factor_can_delete_a_card_saved_before_the_rule(
    alice: User, saved_card: Callable[[str], PaymentMethod]
) -> None:
    card = saved_card(APPROVED)  # saved while the rule was off (or before it existed)
    client = Client()
    client.force_login(alice)

    response = client.post(reverse("portal_pay:delete_card", args=[card.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("portal_pay:cards")
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.DELETED
    assert audit_events("vault.payment_method_deleted", card)[0].actor_id == str(alice.pk)


def test_a_customer_with_a_second_factor_deletes_only_with_a_fresh_one(
    alice: User, saved_card: Callable[[str], PaymentMethod]
) -> None:
    card = saved_card(APPROVED)
    give_totp_device(alice)

    with pytest.raises(SavedCardRefused) as refused:
        delete_saved_card(card, by=alice, request=None)

    assert refused.value.field == "step_up"
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE
