"""reveal_card: the only way back to a number; explicit permission, audited, rate-limited."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command, get_commands

from audit.models import AuditEvent
from payments.models import CardSecret, PaymentMethod
from payments.vault.exceptions import PaymentMethodGone, RevealRefused
from payments.vault.services import delete_payment_method, reveal_card
from security.models import User
from tests.factories import make_user
from tests.payments.conftest import VISA

pytestmark = pytest.mark.django_db


def test_reveal_with_the_permission_is_audited_with_its_purpose(
    alice_card: PaymentMethod, gateway: User
) -> None:
    revealed = reveal_card(alice_card.token, purpose="capture invoice F-1001", by=gateway)

    assert (revealed.number, revealed.brand, revealed.last4) == (VISA, "visa", "1111")
    assert VISA not in repr(revealed)
    event = AuditEvent.objects.get(action="vault.card_revealed")
    assert event.actor_id == str(gateway.pk)
    assert event.object_id == str(alice_card.pk)
    assert event.details["purpose"] == "capture invoice F-1001"
    assert VISA not in str(event.details)


@pytest.mark.parametrize("who", ["alice", "clerk", "superuser"])
def test_reveal_without_the_permission_is_refused_and_audited(
    alice_card: PaymentMethod, alice: User, clerk: User, who: str
) -> None:
    actor = {
        "alice": alice,
        "clerk": clerk,
        "superuser": make_user("root", is_staff=True, is_superuser=True),
    }[who]

    with pytest.raises(RevealRefused, match=r"payments\.reveal_card"):
        reveal_card(alice_card.token, purpose="curious", by=actor)

    refused = AuditEvent.objects.get(action="vault.reveal_refused")
    assert refused.actor_id == str(actor.pk) and refused.details["reason"] == "permission"
    assert not AuditEvent.objects.filter(action="vault.card_revealed").exists()


def test_a_group_holding_the_permission_grants_it(alice_card: PaymentMethod) -> None:
    group = Group.objects.create(name="payment processors")
    group.permissions.add(Permission.objects.get(codename="reveal_card"))
    account = make_user("svc-batch")
    account.groups.add(group)
    assert reveal_card(alice_card.token, purpose="batch", by=account).number == VISA


def test_a_purpose_is_required(alice_card: PaymentMethod, gateway: User) -> None:
    with pytest.raises(RevealRefused) as caught:
        reveal_card(alice_card.token, purpose="  ", by=gateway)
    assert caught.value.field == "purpose"


def test_an_unknown_token_is_refused_naming_the_field(gateway: User) -> None:
    with pytest.raises(RevealRefused) as caught:
        reveal_card("tok_nope", purpose="capture", by=gateway)
    assert caught.value.field == "token"
    assert AuditEvent.objects.get(action="vault.reveal_refused").details["reason"] == (
        "unknown_token"
    )


def test_reveals_are_rate_limited_per_actor_per_minute(
    alice_card: PaymentMethod, gateway: User, settings: Any
) -> None:
    settings.VAULT_REVEAL_RATE_PER_MINUTE = 3
    other = make_user("svc-other")
    other.user_permissions.add(Permission.objects.get(codename="reveal_card"))
    start = datetime.datetime(2031, 5, 1, 12, 0, tzinfo=datetime.UTC)
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(3):
            reveal_card(alice_card.token, purpose="capture", by=gateway)
        with pytest.raises(RevealRefused, match="too many"):
            reveal_card(alice_card.token, purpose="capture", by=gateway)
        assert reveal_card(alice_card.token, purpose="capture", by=other).number == VISA
        clock.shift(datetime.timedelta(seconds=61))
        assert reveal_card(alice_card.token, purpose="capture", by=gateway).number == VISA

    refused = AuditEvent.objects.get(action="vault.reveal_refused")
    assert refused.details["reason"] == "rate_limit"
    assert AuditEvent.objects.filter(action="vault.card_revealed").count() == 5


def test_a_deleted_payment_method_is_crypto_shredded(
    alice_card: PaymentMethod, alice: User, gateway: User
) -> None:
    deleted = delete_payment_method(alice_card, by=alice)

    assert deleted.status == PaymentMethod.Status.DELETED
    assert PaymentMethod.objects.values_list("last4", flat=True).get(pk=alice_card.pk) == "1111"
    assert not CardSecret.objects.filter(token=alice_card.token).exists()
    event = AuditEvent.objects.get(action="vault.payment_method_deleted")
    assert event.actor_id == str(alice.pk) and event.object_id == str(alice_card.pk)
    with pytest.raises(PaymentMethodGone):
        reveal_card(alice_card.token, purpose="capture", by=gateway)
    with pytest.raises(PaymentMethodGone):
        delete_payment_method(alice_card, by=alice)


def test_no_group_of_the_role_matrix_holds_the_reveal_permission() -> None:
    if "sync_roles" in get_commands():
        call_command("sync_roles", verbosity=0)
    holders = Group.objects.filter(
        permissions__content_type__app_label="payments", permissions__codename="reveal_card"
    )
    assert not holders.exists(), f"groups holding payments.reveal_card: {list(holders)}"
