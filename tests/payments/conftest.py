"""Vault fixtures: a fresh keyring per test, a payment-processing service account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from billing.models import Customer
from payments.models import CardSecret, PaymentMethod
from payments.vault.cards import Card
from payments.vault.services import tokenize
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.factories import make_user

# Test cards (public test numbers, valid Luhn): one per brand.
VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Each test gets its own keyring file (KEKs and fingerprint key), never the demo's."""
    path = tmp_path / "keys" / "vault_keyring.json"
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = path
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048  # faster key generation; production uses 3072
    forget_cached_keyrings()
    yield path
    forget_cached_keyrings()


@pytest.fixture
def gateway(db: None) -> User:
    """The payment-processing service account: the only holder of payments.reveal_card."""
    user = make_user("svc-gateway")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="payments", codename="reveal_card")
    )
    return user


def secret_of(method: PaymentMethod) -> CardSecret | None:
    """The card's secret in the vault's table (through the vault alias), if any."""
    return CardSecret.objects.select_related("data_key").filter(token=method.token).first()


def card(number: str = VISA, expiry: str = "12/39", cvc: str = "737") -> Card:
    return Card.from_input(number=number, expiry=expiry, cvc=cvc)


@pytest.fixture
def root(db: None) -> User:
    """A superuser (break-glass) in the admin."""
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def officer(db: None) -> User:
    """Sofia, who may read the vault's key status page."""
    user = make_user("sofia-security", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_key_status"))
    return user


@pytest.fixture
def alice_card(alice_company: Customer, alice: User) -> PaymentMethod:
    """Alice's Visa, tokenized by Alice in the portal."""
    return tokenize(card(), customer=alice_company, by=alice)


# The payments fixtures: Alice's 1,000 SEK invoice, saved cards, portal client; an analyst.
from tests.payments.fixtures import (  # noqa: E402, F401
    alice_client,
    analyst,
    saved_card,
    thousand_sek_invoice,
)

# The vault role for real (PostgreSQL roles, the vault alias): tests/payments/vault_role.py.
from tests.payments.vault_role import vault_role  # noqa: E402, F401
