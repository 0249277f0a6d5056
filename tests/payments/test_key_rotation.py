"""Dynamic data keys, re-encryption, destruction and KEK rotation (time moves, never sleeps)."""

from __future__ import annotations

import datetime
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from audit import SYSTEM
from audit.models import AuditEvent
from billing.models import Customer
from payments.models import CardSecret, DataKey, PaymentMethod
from payments.vault import services as key_services
from payments.vault.schedules import register_vault_schedules
from payments.vault.services import key_rotation, reveal_card, tokenize
from security.models import User
from tests.payments.conftest import AMEX, MASTERCARD, VISA, card

pytestmark = pytest.mark.django_db

START = datetime.datetime(2031, 3, 1, 9, 0, tzinfo=datetime.UTC)


def _key_of(method: PaymentMethod) -> int:
    """The id of the data key the card's secret is sealed under."""
    return CardSecret.objects.values_list("data_key_id", flat=True).get(token=method.token)


def _tokenize_three(customer: Customer, by: User) -> list[PaymentMethod]:
    return [
        tokenize(card(VISA), customer=customer, by=by),
        tokenize(card(MASTERCARD), customer=customer, by=by),
        tokenize(card(AMEX, cvc="1234"), customer=customer, by=by),
    ]


def test_a_key_past_its_cryptoperiod_never_encrypts(
    alice_company: Customer, alice: User, settings: Any
) -> None:
    settings.VAULT_DEK_ROTATION_HOURS = 24
    with time_machine.travel(START, tick=False) as clock:
        first = tokenize(card(), customer=alice_company, by=alice)
        clock.shift(datetime.timedelta(hours=23, minutes=59))
        same = tokenize(card(), customer=alice_company, by=alice)
        clock.shift(datetime.timedelta(minutes=1))
        later = tokenize(card(), customer=alice_company, by=alice)

    keys = [_key_of(method) for method in (first, same, later)]
    assert keys[0] == keys[1] != keys[2]
    old = DataKey.objects.get(pk=keys[0])
    assert old.state == DataKey.State.DECRYPT_ONLY
    assert old.retired_at == START + datetime.timedelta(hours=24)
    rotated = AuditEvent.objects.filter(action="vault.dek_rotated").order_by("seq").last()
    assert rotated is not None and rotated.details["reason"] == "cryptoperiod"
    assert rotated.details["previous_key_id"] == old.hex_id


def test_rotation_then_reencryption_destroys_the_old_key_and_every_card_still_reveals(
    alice_company: Customer, alice: User, gateway: User, settings: Any
) -> None:
    settings.VAULT_REENCRYPT_BATCH = 2  # several batches
    methods = _tokenize_three(alice_company, alice)
    old = DataKey.objects.get(state=DataKey.State.ACTIVE)

    new = key_services.rotate_data_key(by=SYSTEM)
    assert reveal_card(methods[0].token, purpose="after rotation", by=gateway).number == VISA

    report = key_services.reencrypt_vault(by=SYSTEM)

    assert report.reencrypted == 3 and report.destroyed == [old.hex_id]
    old.refresh_from_db()
    assert old.state == DataKey.State.DESTROYED and old.wrapped_key is None
    assert not CardSecret.objects.filter(data_key_id=old.pk).exists()
    assert set(CardSecret.objects.values_list("data_key_id", flat=True)) == {new.pk}
    numbers = [reveal_card(m.token, purpose="check", by=gateway).number for m in methods]
    assert numbers == [VISA, MASTERCARD, AMEX]
    moved = AuditEvent.objects.filter(action="vault.reencrypted")
    assert sum(e.details["records"] for e in moved) == 3 and moved.count() == 2
    assert AuditEvent.objects.filter(action="vault.dek_destroyed", object_id=str(old.pk)).exists()


def test_a_key_whose_records_are_not_all_moved_is_not_destroyed(
    alice_company: Customer, alice: User
) -> None:
    method = tokenize(card(), customer=alice_company, by=alice)
    old = DataKey.objects.get(pk=_key_of(method))
    key_services.rotate_data_key(by=SYSTEM)

    assert key_services.destroy_data_key(old, by=SYSTEM) is False
    old.refresh_from_db()
    assert old.state == DataKey.State.DECRYPT_ONLY and old.wrapped_key is not None
    assert not AuditEvent.objects.filter(action="vault.dek_destroyed").exists()


def test_the_active_key_is_never_destroyed(alice_card: PaymentMethod) -> None:
    active = DataKey.objects.get(state=DataKey.State.ACTIVE)
    CardSecret.objects.all().delete()
    assert key_services.destroy_data_key(active, by=SYSTEM) is False


def test_a_rotation_queues_the_reencryption_job(
    alice_card: PaymentMethod, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        key_services.rotate_data_key(by=SYSTEM)
    assert [c.__name__ for c in callbacks] == ["_enqueue_reencryption"]


def test_kek_rotation_rewraps_every_key_and_everything_still_reveals(
    alice_company: Customer, alice: User, gateway: User, vault_keyring: Path
) -> None:
    methods = _tokenize_three(alice_company, alice)
    key_services.rotate_data_key(by=SYSTEM)
    methods.append(tokenize(card(VISA), customer=alice_company, by=alice))
    key_services.current_entry_key()
    ciphertexts = dict(CardSecret.objects.values_list("token", "ciphertext"))

    report = key_services.rotate_kek(by=alice, retire_old=True)

    assert report.kek_version == 2 and report.created
    assert (report.data_keys, report.entry_keys) == (2, 1)
    assert report.retired_versions == [1]
    assert set(DataKey.objects.values_list("kek_version", flat=True)) == {2}
    assert json.loads(vault_keyring.read_text())["kek"].keys() == {"2"}
    # Card ciphertexts are untouched: only the DEKs were rewrapped.
    assert dict(CardSecret.objects.values_list("token", "ciphertext")) == ciphertexts
    revealed = [reveal_card(m.token, purpose="after KEK", by=gateway).number for m in methods]
    assert revealed == [VISA, MASTERCARD, AMEX, VISA]
    event = AuditEvent.objects.get(action="vault.kek_rotated")
    assert event.details["kek_version"] == 2 and event.actor_id == str(alice.pk)
    assert AuditEvent.objects.get(action="vault.kek_retired").details["kek_versions"] == [1]


def test_kek_rotation_never_retires_a_version_still_in_use(
    alice_card: PaymentMethod, vault_keyring: Path
) -> None:
    from security.keyring import get_keyring

    get_keyring().add_version()  # operator added v2 without rewrapping
    assert key_services.retire_kek_versions(by=SYSTEM) == []
    assert set(json.loads(vault_keyring.read_text())["kek"]) == {"1", "2"}


def test_the_commands_report_progress_and_what_they_did(
    alice_company: Customer, alice: User, gateway: User
) -> None:
    methods = _tokenize_three(alice_company, alice)
    out = StringIO()

    call_command("rotate_dek", stdout=out)
    call_command("reencrypt_vault", "--actor", alice.username, stdout=out)
    call_command("rotate_kek", "--retire-old", stdout=out)

    text = out.getvalue()
    assert "Active data key is now" in text
    assert "3/3 re-encrypted" in text and "Re-encrypted 3 record(s); destroyed 1" in text
    assert "KEK version 2 (new): rewrapped 1 data key(s)" in text
    assert VISA not in text
    assert reveal_card(methods[2].token, purpose="check", by=gateway).number == AMEX
    reencrypted = AuditEvent.objects.filter(action="vault.reencrypted").get()
    assert reencrypted.actor_id == str(alice.pk)


def test_an_unknown_actor_is_refused_by_name() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--actor"):
        call_command("rotate_dek", "--actor", "nobody", stdout=StringIO())
    assert not DataKey.objects.exists()


def test_the_hourly_job_rotates_only_when_due_and_cleans_up(
    alice_company: Customer, alice: User, gateway: User, settings: Any
) -> None:
    settings.VAULT_DEK_ROTATION_HOURS = 24
    with time_machine.travel(START, tick=False) as clock:
        method = tokenize(card(), customer=alice_company, by=alice)
        first = key_services.rotate_due_keys(by=SYSTEM)
        assert first["dek_rotated"] is False and first["reencrypted"] == 0
        clock.shift(datetime.timedelta(hours=25))
        second = key_services.rotate_due_keys(by=SYSTEM)

    assert second["dek_rotated"] is True
    assert second["reencrypted"] == 1 and len(second["destroyed"]) == 1
    assert reveal_card(method.token, purpose="check", by=gateway).number == VISA
    assert timezone.now()  # the clock is back


def test_schedules_register_idempotently(settings: Any) -> None:
    register_vault_schedules()
    register_vault_schedules()
    schedule = Schedule.objects.get(name="vault.rotate_due_keys")
    assert schedule.func == "payments.vault.tasks.rotate_due_keys_task"
    assert Schedule.objects.filter(name="vault.rotate_due_keys").count() == 1


def test_a_key_cached_by_another_process_never_encrypts_after_its_rotation(
    alice_company: Customer, alice: User, gateway: User
) -> None:
    first = tokenize(card(), customer=alice_company, by=alice)
    stale = key_rotation._encrypting["active"]  # what a second worker process still holds
    key_services.rotate_data_key(by=SYSTEM)
    key_rotation._encrypting["active"] = stale

    later = tokenize(card(MASTERCARD), customer=alice_company, by=alice)

    active = DataKey.objects.get(state=DataKey.State.ACTIVE)
    assert _key_of(first) != active.pk
    assert _key_of(later) == active.pk
    assert CardSecret.objects.filter(data_key_id=_key_of(first)).count() == 1
    # The secret sealed under the stale key was erased, not left behind.
    assert CardSecret.objects.count() == PaymentMethod.objects.count() == 2
    assert reveal_card(later.token, purpose="test", by=gateway).number == MASTERCARD


def test_the_cached_key_is_reloaded_after_its_time_in_memory(
    alice_company: Customer, alice: User, settings: Any
) -> None:
    settings.VAULT_DEK_CACHE_SECONDS = 0
    tokenize(card(), customer=alice_company, by=alice)
    loaded_at = key_rotation._encrypting["active"][0]

    tokenize(card(MASTERCARD), customer=alice_company, by=alice)

    assert key_rotation._encrypting["active"][0] > loaded_at


@pytest.mark.parametrize(
    "kind", [key_rotation.DATA_KEYS, key_rotation.ENTRY_KEYS], ids=["data key", "card-entry key"]
)
def test_both_kinds_of_key_rotate_through_the_one_implementation(
    kind: key_rotation.KeyKind[Any],
) -> None:
    """Data keys and card-entry keys share one rotation (``KeyKind.rotate``): the active key
    turns retired, the new one is the only active key, wrapped under the KEK, audited; a key
    inside its period is kept when only a due rotation is asked for."""
    first = kind.rotate(by=SYSTEM)
    assert kind.rotate(by=SYSTEM, only_if_due=True).pk == first.pk  # inside its period

    second = kind.rotate(by=SYSTEM)

    first.refresh_from_db()
    assert (first.state, first.retired_at is not None) == (kind.retired_state, True)
    assert list(kind.model.objects.filter(state="active")) == [second]
    assert kind.unwrap(second)  # wrapped under the keyring's KEK, and unwraps
    rotated = AuditEvent.objects.filter(action=kind.rotated_event).order_by("seq")
    assert [e.object_id for e in rotated] == [str(first.pk), str(second.pk)]

    with time_machine.travel(timezone.now() + datetime.timedelta(days=400), tick=False):
        due = kind.rotate(by=SYSTEM, only_if_due=True)
    assert due.pk != second.pk and due.state == "active"
    second.refresh_from_db()
    assert second.state == kind.retired_state
