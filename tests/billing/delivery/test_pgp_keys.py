"""Customers' PGP keys: uploaded through the service, checked, fingerprint and expiry kept."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from billing.delivery import services
from billing.delivery.exceptions import InvalidPgpKey
from billing.delivery.models import CustomerPgpKey
from billing.models import Customer
from security.models import User
from tests.billing.delivery.conftest import Keyholder
from tests.factories import audit_events


@pytest.mark.django_db
def test_a_valid_key_is_stored_with_fingerprint_and_expiry_and_audited(
    alice_company: Customer, alice_keyholder: Keyholder, clerk: User, gnupg_home: Path
) -> None:
    key = services.set_customer_pgp_key(
        alice_company, armored_key=alice_keyholder.public_key, by=clerk
    )

    assert key.fingerprint == alice_keyholder.fingerprint
    assert key.expires_at is not None and key.expires_at > timezone.now()
    [event] = audit_events("customer.pgp_key_set", alice_company)
    assert event.details["fingerprint"] == alice_keyholder.fingerprint


@pytest.mark.parametrize(
    ("armored", "message"),
    [
        ("hello", "ASCII-armored"),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n"
            "-----END PGP PUBLIC KEY BLOCK-----",
            "cannot be read",
        ),
        ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n-----BEGIN PGP PRIVATE KEY BLOCK-----", "private"),
    ],
)
@pytest.mark.django_db
def test_a_malformed_key_is_refused_naming_the_field_and_nothing_changes(
    alice_company: Customer, clerk: User, armored: str, message: str, gnupg_home: Path
) -> None:
    with pytest.raises(InvalidPgpKey) as error:
        services.set_customer_pgp_key(alice_company, armored_key=armored, by=clerk)

    assert error.value.field == "pgp_key"
    assert message in error.value.message
    assert CustomerPgpKey.objects.count() == 0
    assert audit_events("customer.pgp_key_set") == []


@pytest.mark.django_db
def test_an_expired_key_is_refused(
    alice_company: Customer, alice_keyholder: Keyholder, clerk: User, gnupg_home: Path
) -> None:
    later = timezone.now() + datetime.timedelta(days=400)
    with time_machine.travel(later, tick=False), pytest.raises(InvalidPgpKey) as error:
        services.set_customer_pgp_key(
            alice_company, armored_key=alice_keyholder.public_key, by=clerk
        )
    assert "expired" in error.value.message
