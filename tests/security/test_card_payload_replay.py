"""Issue 17, item 3: an encrypted card payload could be replayed by anyone.

One customer's browser payload (card and CVC, encrypted) posted by another customer was
charged and saved to the second account: the vault bound only the key id. Each payload
now carries the form's one-time nonce, bound to the user and the session and valid for
minutes; a replayed, foreign or expired payload is refused and audited.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from billing.models import Customer, Invoice
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from payments.vault import services as key_services
from security.models import User
from tests.factories import audit_events, line
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.payments.fixtures import APPROVED, thousand_sek_invoice  # noqa: F401
from tests.payments.test_card_entry import browser_encrypt, form_payload

pytestmark = pytest.mark.django_db

CARD = {"number": APPROVED, "expiry": "12/39", "cvc": "123"}


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pay(client: Client, invoice: Invoice, payload: str, key: str, amount: str) -> int:
    return client.post(
        reverse("portal_pay:pay", args=[invoice.pk]),
        {"amount": amount, "card_payload": payload, "idempotency_key": key * 16},
    ).status_code


def _refusals() -> list[str]:
    return [event.details["reason"] for event in audit_events("vault.card_payload_refused")]


def test_bob_cannot_pay_with_alices_captured_payload(
    alice: User,
    bob: User,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    thousand_sek_invoice: Invoice,  # noqa: F811
) -> None:
    bobs_invoice = make_open_invoice(bob_company, [line("Work", "1", "100.00")])
    alices_payload = form_payload(
        _client(alice), reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]), CARD
    )
    bobs = _client(bob)
    bobs.get(reverse("portal_pay:pay", args=[bobs_invoice.pk]))  # Bob has a form of his own

    assert _pay(bobs, bobs_invoice, alices_payload, "b", "125.00") == 400

    assert not Payment.objects.exists() and not SandboxCharge.objects.exists()
    assert not PaymentMethod.objects.exists()
    assert _refusals() == ["another_session"]


def test_a_payload_is_accepted_once(
    alice: User,
    thousand_sek_invoice: Invoice,  # noqa: F811
) -> None:
    client = _client(alice)
    payload = form_payload(client, reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]), CARD)

    assert _pay(client, thousand_sek_invoice, payload, "1", "400.00") == 302
    assert _pay(client, thousand_sek_invoice, payload, "2", "400.00") == 400  # a new key: a replay

    assert Payment.objects.count() == 1 and SandboxCharge.objects.count() == 1
    assert _refusals() == ["replayed"]


def test_a_payload_expires_within_minutes(
    alice: User,
    thousand_sek_invoice: Invoice,  # noqa: F811
) -> None:
    client = _client(alice)
    payload = form_payload(client, reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]), CARD)
    later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(minutes=11)

    with time_machine.travel(later, tick=False):
        assert _pay(client, thousand_sek_invoice, payload, "e", "1000.00") == 400

    assert not Payment.objects.exists()
    assert _refusals() == ["expired"]


def test_a_payload_without_a_nonce_is_refused(
    alice: User,
    thousand_sek_invoice: Invoice,  # noqa: F811
) -> None:
    client = _client(alice)
    client.get(reverse("portal_pay:pay", args=[thousand_sek_invoice.pk]))
    bare = browser_encrypt(key_services.current_entry_key(), CARD)  # the old format: card only

    assert _pay(client, thousand_sek_invoice, bare, "n", "1000.00") == 400

    assert not Payment.objects.exists()
    assert _refusals() == ["no_nonce"]
