"""Payment fixtures: an invoice of 1,000 SEK for Alice, her saved cards, the sandbox cards."""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from billing.models import Customer, Invoice
from billing.money import Money
from payments.gateways.sandbox import CARD_DECLINED, CARD_INSUFFICIENT_FUNDS, CARD_TIMEOUT
from payments.models import PaymentMethod
from payments.vault.cards import Card
from payments.vault.services import tokenize
from security.models import User
from tests.factories import line, make_user

APPROVED = "4242424242424242"
DECLINED = CARD_DECLINED
INSUFFICIENT = CARD_INSUFFICIENT_FUNDS
TIMEOUT = CARD_TIMEOUT


def sek(amount: int) -> Money:
    """Whole kronor as Money (minor units)."""
    return Money(amount * 100, "SEK")


@pytest.fixture
def thousand_sek_invoice(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> Invoice:
    """Alice's open invoice of exactly 1,000.00 SEK (800 + 25 % VAT)."""
    invoice = make_open_invoice(alice_company, [line("Annual licence", "1", "800.00")])
    assert invoice.gross_total == 100_000
    return invoice


@pytest.fixture
def saved_card(alice: User, alice_company: Customer) -> Callable[[str], PaymentMethod]:
    """``saved_card(number)``: a card of Alice's company, tokenized by Alice."""

    def make(number: str = APPROVED) -> PaymentMethod:
        return tokenize(
            Card.from_input(number=number, expiry="12/39", cvc="123"),
            customer=alice_company,
            by=alice,
        )

    return make


@pytest.fixture
def alice_client(alice: User) -> Client:
    """Alice signed in to the portal."""
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def analyst(db: None) -> User:
    """Fiona, a fraud analyst (the role's group, as sync_roles made it)."""
    user = make_user("fiona", is_staff=True)
    user.groups.add(Group.objects.get(name="Fraud analyst"))
    return User.objects.get(pk=user.pk)


def key(n: Any = 1) -> str:
    return f"test-key-{n:0>8}"


CAMT054_DIR = Path(__file__).parent / "camt054"


def camt054_file(name: str, **values: object) -> bytes:
    """A camt.054 fixture of tests/payments/camt054/ with its $-names filled in."""
    text = (CAMT054_DIR / name).read_text(encoding="utf-8")
    return string.Template(text).substitute({k: str(v) for k, v in values.items()}).encode()
