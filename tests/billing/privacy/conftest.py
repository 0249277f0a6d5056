"""Privacy tests: Astrid (a person, customer of her own) with everything the platform can
hold about her; Bob, who must never appear in her export; a security officer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from billing.models import Customer, Invoice, PortalAccount
from payments.vault.cards import Card
from payments.vault.services import tokenize
from security import roles
from security.keyring import forget_cached_keyrings
from security.models import User
from tests.factories import line, make_customer, make_user, with_role
from tests.mfa_helpers import give_totp_device, mark_client_verified

ASTRID = {
    "name": "Astrid Vinterqvist",
    "identity_number": "19811218-9876",
    "email": "astrid.vinterqvist@mail.example",
    "address_line1": "Snöbollsgränd 17",
    "address_line2": "Lägenhet 1204",
    "postal_code": "981 99",
    "city": "Kiruna",
}


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "keys" / "vault_keyring.json"
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = path
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield path
    forget_cached_keyrings()


@pytest.fixture
def astrid_customer(db: None) -> Customer:
    return make_customer(
        ASTRID["name"],
        kind=Customer.Kind.PERSON,
        language="en",
        **{k: v for k, v in ASTRID.items() if k != "name"},
    )


@pytest.fixture
def astrid(astrid_customer: Customer) -> User:
    user = make_user("astrid.v", first_name="Astrid", last_name="Vinterqvist")
    PortalAccount.objects.create(user=user, customer=astrid_customer)
    return user


@pytest.fixture
def astrid_client(astrid: User) -> Client:
    """Astrid signed in with her second factor, confirmed just now (step-up fresh)."""
    client = Client()
    client.force_login(astrid)
    mark_client_verified(client, give_totp_device(astrid))
    return client


@pytest.fixture
def astrid_invoices(
    company: Any, make_open_invoice: Callable[..., Invoice], astrid_customer: Customer
) -> list[Invoice]:
    return [
        make_open_invoice(astrid_customer, [line("Skidlektioner", "3", "450.00")]),
        make_open_invoice(astrid_customer, [line("Hyra av pulka", "1", "120.50")]),
    ]


@pytest.fixture
def astrid_card(astrid: User, astrid_customer: Customer) -> Any:
    return tokenize(
        Card.from_input(number="4111111111111111", expiry="12/39", cvc="737"),
        customer=astrid_customer,
        by=astrid,
    )


@pytest.fixture
def officer(db: None) -> User:
    return with_role(make_user("sally", is_staff=True), roles.SECURITY_OFFICER)


@pytest.fixture
def second_officer(db: None) -> User:
    return with_role(make_user("sam", is_staff=True), roles.SECURITY_OFFICER)
