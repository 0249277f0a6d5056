"""Orphan card secrets: what a crash between the vault's two writes leaves, erased hourly."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from audit import SYSTEM
from audit.models import AuditEvent
from billing.models import Customer
from payments.models import CardSecret, PaymentMethod
from payments.vault.services import purge_orphan_secrets, tokenize
from security.models import User
from tests.payments.conftest import MASTERCARD, card, secret_of

pytestmark = pytest.mark.django_db


def _orphan_like(method: PaymentMethod, token: str) -> None:
    """A secret whose method was never written (the process died between the two)."""
    secret = secret_of(method)
    assert secret is not None
    CardSecret.objects.create(token=token, data_key=secret.data_key, ciphertext=b"\x01" * 40)


def test_only_old_secrets_without_an_active_card_are_erased(
    alice_company: Customer, alice: User, settings: Any
) -> None:
    settings.VAULT_ORPHAN_SECRET_MINUTES = 60
    kept = tokenize(card(), customer=alice_company, by=alice)
    deleted = tokenize(card(MASTERCARD), customer=alice_company, by=alice)
    # A deletion interrupted before its secret was erased:
    PaymentMethod.objects.filter(pk=deleted.pk).update(status=PaymentMethod.Status.DELETED)
    _orphan_like(kept, "tok_never_written")

    assert purge_orphan_secrets(by=SYSTEM) == 0  # all younger than an hour
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=61)):
        _orphan_like(kept, "tok_in_progress")  # a tokenize under way right now
        erased = purge_orphan_secrets(by=SYSTEM, batch=1)  # several batches

    assert erased == 2
    tokens = set(CardSecret.objects.values_list("token", flat=True))
    assert tokens == {kept.token, "tok_in_progress"}
    event = AuditEvent.objects.get(action="vault.orphan_secrets_erased")
    assert event.details["records"] == 2


def test_nothing_to_erase_writes_no_event(alice_card: PaymentMethod) -> None:
    with time_machine.travel(timezone.now() + datetime.timedelta(days=1)):
        assert purge_orphan_secrets(by=SYSTEM) == 0
    assert CardSecret.objects.filter(token=alice_card.token).exists()
    assert not AuditEvent.objects.filter(action="vault.orphan_secrets_erased").exists()
