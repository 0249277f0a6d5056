"""End-to-end card entry: the server gets ciphertext + key id and the vault opens it in tokenize."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from audit.models import AuditEvent
from billing.models import Customer
from payments.models import CardSecret, EntryKey, PaymentMethod
from payments.vault import keys
from payments.vault import services as key_services
from payments.vault.entry import EncryptedCard, issue_entry_nonce
from payments.vault.exceptions import InvalidCard
from payments.vault.services import reveal_card, tokenize
from security.models import User
from tests.payments.conftest import VISA

pytestmark = pytest.mark.django_db


def browser_encrypt(key: EntryKey, data: dict[str, Any], *, kid: str | None = None) -> str:
    """What static/payments/card-entry.js does, in Python."""
    public = serialization.load_der_public_key(bytes(key.public_key_der))
    assert isinstance(public, rsa.RSAPublicKey)
    kid = kid or key.kid
    ciphertext = public.encrypt(json.dumps(data).encode(), keys.entry_oaep_padding(kid))
    return f"v1.{kid}.{base64.urlsafe_b64encode(ciphertext).decode().rstrip('=')}"


CARD = {"number": VISA, "expiry": "12/39", "cvc": "737"}
TEST_SESSION = "tillit-test-session-key-0123456789"


def sealed(key: EntryKey, data: dict[str, Any], user: User, *, kid: str | None = None) -> Any:
    """An EncryptedCard as the card form sends it for ``user`` in session TEST_SESSION."""
    nonce = issue_entry_nonce(user_id=user.pk, session_key=TEST_SESSION)
    return EncryptedCard(
        payload=browser_encrypt(key, {**data, "nonce": nonce}, kid=kid),
        user_id=user.pk,
        session_key=TEST_SESSION,
    )


def session_payload(client: Client, data: dict[str, Any]) -> str:
    """What card-entry.js posts from any card form of this client's signed-in session:
    encrypted to the current entry key, with a nonce issued to that session."""
    session = client.session
    nonce = issue_entry_nonce(
        user_id=int(session["_auth_user_id"]), session_key=str(session.session_key)
    )
    return browser_encrypt(key_services.current_entry_key(), {**data, "nonce": nonce})


def form_payload(client: Client, url: str, data: dict[str, Any]) -> str:
    """What card-entry.js posts from the page at ``url``: encrypted to the page's key,
    with the page's one-time nonce inside."""
    html = client.get(url).content.decode()
    kid = re.search(r'data-kid="([^"]+)"', html)
    nonce = re.search(r'data-nonce="([^"]+)"', html)
    assert kid and nonce, "the page has no card form"
    key = EntryKey.objects.get(kid=kid.group(1))
    return browser_encrypt(key, {**data, "nonce": nonce.group(1)})


def test_an_encrypted_card_from_the_browser_is_tokenized(
    alice_company: Customer, alice: User, gateway: User
) -> None:
    method = tokenize(
        sealed(key_services.current_entry_key(), CARD, alice), customer=alice_company, by=alice
    )
    assert (method.last4, method.expiry) == ("1111", "12/39")
    assert reveal_card(method.token, purpose="check", by=gateway).number == VISA


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("", "payload"),
        ("4111111111111111", "payload"),
        ("v1.ek_0123456789abcdef.AAAAAAAAAAAAAAAAAAAA", "key_id"),  # unknown key id
        ("v2.ek_0123456789abcdef.AAAAAAAAAAAAAAAAAAAA", "payload"),
    ],
)
def test_a_malformed_payload_or_unknown_key_is_refused_and_stores_nothing(
    alice_company: Customer, alice: User, payload: str, field: str
) -> None:
    key_services.current_entry_key()
    with pytest.raises(InvalidCard) as caught:
        tokenize(EncryptedCard(payload=payload), customer=alice_company, by=alice)
    assert caught.value.field == field
    assert not PaymentMethod.objects.exists()


def test_a_payload_for_another_key_id_does_not_decrypt(
    alice_company: Customer, alice: User
) -> None:
    key = key_services.current_entry_key()
    other = key_services.rotate_entry_key(by=SYSTEM)
    # Encrypted to the old key but labelled with the new key id: OAEP's label check fails.
    forged = browser_encrypt(key, CARD, kid=other.kid)
    with pytest.raises(InvalidCard, match="does not decrypt") as caught:
        tokenize(EncryptedCard(payload=forged), customer=alice_company, by=alice)
    assert caught.value.field == "payload"


def test_a_stale_key_id_is_accepted_in_the_grace_period_then_refused(
    alice_company: Customer, alice: User, settings: Any
) -> None:
    settings.VAULT_ENTRY_KEY_GRACE_MINUTES = 30
    start = datetime.datetime(2031, 1, 1, 12, 0, tzinfo=datetime.UTC)
    with time_machine.travel(start, tick=False) as clock:
        old = key_services.current_entry_key()
        key_services.rotate_entry_key(by=SYSTEM)
        tokenize(sealed(old, CARD, alice), customer=alice_company, by=alice)
        clock.shift(datetime.timedelta(minutes=31))
        assert key_services.expire_entry_keys(by=SYSTEM) == 1
        with pytest.raises(InvalidCard, match="expired; reload") as caught:
            tokenize(sealed(old, CARD, alice), customer=alice_company, by=alice)
    assert caught.value.field == "key_id"
    old.refresh_from_db()
    assert old.state == EntryKey.State.EXPIRED and old.wrapped_private_key is None
    assert AuditEvent.objects.filter(action="vault.entry_key_expired").count() == 1


def test_bad_card_data_inside_a_valid_payload_names_the_field(
    alice_company: Customer, alice: User
) -> None:
    card = sealed(key_services.current_entry_key(), {**CARD, "expiry": "01/20"}, alice)
    with pytest.raises(InvalidCard) as caught:
        tokenize(card, customer=alice_company, by=alice)
    assert caught.value.field == "expiry"


def test_the_entry_key_rotates_when_due(settings: Any) -> None:
    settings.VAULT_ENTRY_KEY_ROTATION_HOURS = 24
    start = datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC)
    with time_machine.travel(start, tick=False) as clock:
        first = key_services.current_entry_key()
        assert key_services.current_entry_key() == first
        clock.shift(datetime.timedelta(hours=24))
        second = key_services.current_entry_key()
    assert second != first
    first.refresh_from_db()
    assert first.state == EntryKey.State.PREVIOUS
    assert AuditEvent.objects.filter(action="vault.entry_key_rotated").count() == 2


# ---------------------------------------------------------------- the page


@pytest.fixture
def portal(admin_client_for: Callable[[User], Client]) -> Callable[[User], Client]:
    """A portal session whose second factor is verified (step-up fresh)."""
    return admin_client_for


def test_the_card_page_publishes_the_current_key_and_has_no_named_card_inputs(
    alice: User, portal: Callable[[User], Client]
) -> None:
    response = portal(alice).get(reverse("portal_pay:cards"))
    html = response.content.decode()
    key = EntryKey.objects.get(state=EntryKey.State.ACTIVE)
    assert response.status_code == 200
    assert f'data-kid="{key.kid}"' in html
    assert base64.b64encode(bytes(key.public_key_der)).decode() in html
    assert 'name="number"' not in html and 'name="cvc"' not in html
    # The script by its collected, content-hashed name (WhiteNoise's manifest).
    assert "<script>" not in html
    assert re.search(r'src="/static/payments/card-entry\.[0-9a-f]{12}\.js"', html)


def test_posting_the_encrypted_payload_saves_the_card_and_logs_no_number(
    alice: User,
    alice_company: Customer,
    caplog: pytest.LogCaptureFixture,
    portal: Callable[[User], Client],
) -> None:
    caplog.set_level(logging.DEBUG)
    client = portal(alice)
    payload = form_payload(client, reverse("portal_pay:cards"), CARD)

    response = client.post(reverse("portal_pay:cards"), {"card_payload": payload}, follow=True)

    assert response.status_code == 200
    method = PaymentMethod.objects.get(customer=alice_company)
    assert "Visa •••• 1111" in response.content.decode()
    assert VISA not in response.content.decode() and VISA not in caplog.text
    assert method.last4 == "1111"


def test_a_bad_post_shows_the_error_on_its_field_and_saves_nothing(
    alice: User, portal: Callable[[User], Client]
) -> None:
    client = portal(alice)
    bad = form_payload(client, reverse("portal_pay:cards"), {**CARD, "number": "4111111111111112"})

    response = client.post(reverse("portal_pay:cards"), {"card_payload": bad})

    assert response.status_code == 400
    assert 'id="error-number"' in response.content.decode()
    assert "4111111111111112" not in response.content.decode()
    missing = client.post(reverse("portal_pay:cards"), {"card_payload": ""})
    assert 'id="error-card"' in missing.content.decode()
    assert not PaymentMethod.objects.exists()


def test_the_card_page_needs_a_portal_account(
    outsider: User, portal: Callable[[User], Client]
) -> None:
    assert portal(outsider).get(reverse("portal_pay:cards")).status_code == 404
    assert Client().get(reverse("portal_pay:cards")).status_code == 302


def test_saving_a_card_needs_a_second_factor_first(alice: User, settings: Any) -> None:
    settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = True
    client = Client()
    client.force_login(alice)  # a password only, no second factor enrolled
    key_services.current_entry_key()
    payload = browser_encrypt(EntryKey.objects.get(state=EntryKey.State.ACTIVE), CARD)

    page = client.get(reverse("portal_pay:cards"))
    refused = client.post(reverse("portal_pay:cards"), {"card_payload": payload})

    assert 'id="mfa-needed"' in page.content.decode()
    assert 'id="card-entry"' not in page.content.decode()
    assert refused.status_code == 400
    assert 'id="error-card"' in refused.content.decode()
    assert not PaymentMethod.objects.exists()


def test_bob_cannot_delete_alices_card_but_alice_can(
    alice_card: PaymentMethod, alice: User, bob: User, portal: Callable[[User], Client]
) -> None:
    url = reverse("portal_pay:delete_card", args=[alice_card.pk])
    assert portal(bob).post(url).status_code == 404
    assert CardSecret.objects.filter(token=alice_card.token).exists()

    assert portal(alice).post(url).status_code == 302
    alice_card.refresh_from_db()
    assert alice_card.status == PaymentMethod.Status.DELETED
    assert not CardSecret.objects.filter(token=alice_card.token).exists()
    assert AuditEvent.objects.filter(action="vault.payment_method_deleted").count() == 1


def test_deleting_a_card_needs_a_fresh_second_factor(
    alice_card: PaymentMethod, alice: User, portal: Callable[[User], Client], settings: Any
) -> None:
    client = portal(alice)
    url = reverse("portal_pay:delete_card", args=[alice_card.pk])
    later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(
        seconds=settings.SECURITY_STEP_UP_SECONDS + 30
    )
    with time_machine.travel(later, tick=False):
        response = client.post(url)

    assert response.status_code == 302
    assert reverse("security:step_up") in response["Location"]
    alice_card.refresh_from_db()
    assert alice_card.status == PaymentMethod.Status.ACTIVE
    assert CardSecret.objects.filter(token=alice_card.token).exists()
