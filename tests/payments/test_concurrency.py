"""PostgreSQL concurrency: rotating during tokenize loses nothing; the reveal limit holds."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from audit import SYSTEM
from billing.models import Customer
from payments.models import CardSecret, DataKey, PaymentMethod
from payments.vault import services as key_services
from payments.vault.exceptions import RevealRefused
from payments.vault.services import reveal_card, tokenize
from security.models import User
from tests.payments.conftest import VISA, card

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))

    def wrap(work: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=30)
            work()
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung (deadlock?)"
    return errors


def test_tokenizing_while_keys_rotate_and_records_move_loses_nothing(
    alice_company: Customer, alice: User, gateway: User, settings: Any
) -> None:
    settings.VAULT_REVEAL_RATE_PER_MINUTE = 10_000
    settings.VAULT_REENCRYPT_BATCH = 3
    tokens: list[str] = []

    def tokenizer() -> None:
        for _ in range(6):
            tokens.append(tokenize(card(), customer=alice_company, by=alice).token)

    def rotator() -> None:
        for _ in range(3):
            key_services.rotate_data_key(by=SYSTEM)
            key_services.reencrypt_vault(by=SYSTEM)

    errors = _run_together([tokenizer, tokenizer, tokenizer, rotator])
    assert not errors, errors
    key_services.reencrypt_vault(by=SYSTEM)

    assert len(tokens) == 18
    active = DataKey.objects.get(state=DataKey.State.ACTIVE)
    assert not DataKey.objects.filter(state=DataKey.State.DECRYPT_ONLY).exists()
    assert set(CardSecret.objects.values_list("data_key_id", flat=True)) == {active.pk}
    assert CardSecret.objects.count() == PaymentMethod.objects.count() == 18
    assert {reveal_card(t, purpose="check", by=gateway).number for t in tokens} == {VISA}


def test_concurrent_reveals_cannot_race_past_the_rate_limit(
    alice_company: Customer, alice: User, gateway: User, settings: Any
) -> None:
    settings.VAULT_REVEAL_RATE_PER_MINUTE = 3
    token = tokenize(card(), customer=alice_company, by=alice).token
    revealed: list[str] = []

    def revealer() -> None:
        with contextlib.suppress(RevealRefused):
            revealed.append(reveal_card(token, purpose="race", by=gateway).number)

    errors = _run_together([revealer] * 8)

    assert not errors, errors
    assert revealed == [VISA] * 3
