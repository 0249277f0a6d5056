"""Saved cards through the API: the card-entry key and nonce, the browser's ciphertext saved
by the same rule as the portal (``payments.saved_cards``), list, read, delete."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from payments.models import PaymentMethod
from payments.vault import keys
from security.models import User
from tests.api.conftest import ALL_SCOPES, Api, error_fields
from tests.mfa_helpers import give_totp_device
from tests.payments.fixtures import APPROVED

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]
CARD = {"number": APPROVED, "expiry": "12/39", "cvc": "123"}


def encrypt(entry: dict[str, Any], card: dict[str, str]) -> str:
    """What static/payments/card-entry.js does with the entry key, in Python."""
    import json

    public = serialization.load_der_public_key(base64.b64decode(entry["public_key"]))
    plaintext = json.dumps({**card, "nonce": entry["nonce"]}).encode()
    ciphertext = public.encrypt(plaintext, keys.entry_oaep_padding(entry["kid"]))  # type: ignore[union-attr]
    return f"v1.{entry['kid']}.{base64.urlsafe_b64encode(ciphertext).decode().rstrip('=')}"


def test_alice_saves_a_card_from_the_browsers_ciphertext(alice_api: Api, settings: Any) -> None:
    settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = False
    entry = alice_api.get("payment-methods/entry-key").json()

    response = alice_api.post("payment-methods", {"payload": encrypt(entry, CARD)})

    assert response.status_code == 201, response.json()
    assert response.json()["last4"] == "4242"
    assert APPROVED not in response.content.decode()
    assert alice_api.get("payment-methods").json()["results"][0]["id"] == response.json()["id"]


def test_a_payload_sealed_for_another_token_is_refused(
    alice_api: Api, api_as: Callable[..., Api], alice: User, settings: Any
) -> None:
    """The nonce is bound to the token it was issued to, as the portal's is to the session."""
    settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = False
    entry = alice_api.get("payment-methods/entry-key").json()

    response = api_as(alice).post("payment-methods", {"payload": encrypt(entry, CARD)})

    assert response.status_code == 400
    assert "payload" in error_fields(response)
    assert not PaymentMethod.objects.exists()


def test_a_payload_is_spent_once(alice_api: Api, settings: Any) -> None:
    settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = False
    payload = encrypt(alice_api.get("payment-methods/entry-key").json(), CARD)

    assert alice_api.post("payment-methods", {"payload": payload}).status_code == 201
    assert alice_api.post("payment-methods", {"payload": payload}).status_code == 400
    assert PaymentMethod.objects.count() == 1


def test_saving_a_card_without_two_step_sign_in_is_refused(alice_api: Api) -> None:
    """The portal's rule (SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS, on by default)."""
    payload = encrypt(alice_api.get("payment-methods/entry-key").json(), CARD)

    response = alice_api.post("payment-methods", {"payload": payload})

    assert response.status_code in (400, 403)
    assert not PaymentMethod.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": APPROVED}, "payload"),
        ({"payload": ""}, "payload"),
        ({"payload": 4242}, "payload"),
        ({}, "payload"),
        ({"payload": "v1.ek_0123456789abcdef.AAAAAAAAAAAAAAAAAAAA", "number": APPROVED}, "number"),
    ],
)
def test_bad_card_input_names_the_field_and_stores_nothing(
    alice_api: Api, settings: Any, body: dict[str, Any], field: str
) -> None:
    settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = False

    response = alice_api.post("payment-methods", body)

    assert response.status_code == 400
    assert field in error_fields(response)
    assert APPROVED not in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_bobs_card_is_a_404_for_alice_to_read_or_delete(
    alice_api: Api, bob: User, bob_company: Any
) -> None:
    from payments.vault.cards import Card
    from payments.vault.services import tokenize

    bobs = tokenize(
        Card.from_input(number=APPROVED, expiry="12/39", cvc="123"), customer=bob_company, by=bob
    )

    assert alice_api.get(f"payment-methods/{bobs.pk}").status_code == 404
    assert alice_api.delete(f"payment-methods/{bobs.pk}").status_code == 404
    assert alice_api.get("payment-methods").json()["results"] == []
    bobs.refresh_from_db()
    assert bobs.status == PaymentMethod.Status.ACTIVE


def test_alice_deletes_her_card(alice_api: Api, saved_card: Cards) -> None:
    card = saved_card(APPROVED)

    response = alice_api.delete(f"payment-methods/{card.pk}")

    assert response.status_code == 204
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.DELETED


def test_with_a_second_factor_deleting_needs_a_step_up_the_token_does_not_carry(
    alice_api: Api, alice: User, saved_card: Cards
) -> None:
    """A token without a second factor from its consent (tests/api/test_step_up.py)."""
    card = saved_card(APPROVED)
    give_totp_device(alice)

    response = alice_api.delete(f"payment-methods/{card.pk}")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "insufficient_user_authentication"
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE


@pytest.mark.parametrize("method", ["entry-key", "create", "delete"])
def test_card_writes_need_payment_methods_write_and_a_customer(
    api_as: Callable[..., Api], alice: User, saved_card: Cards, method: str
) -> None:
    card = saved_card(APPROVED)
    for caller in (
        api_as(alice, [s for s in ALL_SCOPES if s != "payment_methods:write"]),
        api_as(None),
    ):
        if method == "entry-key":
            response = caller.get("payment-methods/entry-key")
        elif method == "create":
            response = caller.post("payment-methods", {"payload": "v1.x"})
        else:
            response = caller.delete(f"payment-methods/{card.pk}")
        assert response.status_code == 403
    card.refresh_from_db()
    assert card.status == PaymentMethod.Status.ACTIVE
