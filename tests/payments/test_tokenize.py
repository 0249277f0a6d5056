"""tokenize: validate, encrypt under the active DEK, store brand/last 4/expiry/fingerprint."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from stdnum import luhn

from audit.models import AuditEvent
from billing.models import Customer
from payments.models import DataKey, PaymentMethod
from payments.vault.exceptions import InvalidCard
from payments.vault.services import reveal_card, tokenize
from security.models import User
from tests.payments.conftest import AMEX, VISA, card, secret_of

pytestmark = pytest.mark.django_db


def test_tokenize_stores_only_what_may_be_shown_and_round_trips(
    alice_company: Customer, alice: User, gateway: User
) -> None:
    method = tokenize(card(VISA, "09/39"), customer=alice_company, by=alice)

    assert method.token.startswith("tok_") and len(method.token) > 30
    assert VISA not in method.token
    assert (method.brand, method.last4, method.expiry) == ("visa", "1111", "09/39")
    assert len(method.fingerprint) == 64
    secret = secret_of(method)
    assert secret is not None and secret.data_key.state == DataKey.State.ACTIVE
    assert VISA.encode() not in secret.sealed()
    assert not {"ciphertext", "data_key"} & {f.name for f in PaymentMethod._meta.fields}
    event = AuditEvent.objects.get(action="vault.card_tokenized")
    assert event.object_id == str(method.pk)
    assert event.details["last4"] == "1111"
    assert reveal_card(method.token, purpose="test", by=gateway).number == VISA


def test_the_same_card_gets_the_same_fingerprint_and_a_new_token(
    alice_company: Customer, bob_company: Customer, alice: User, bob: User
) -> None:
    first = tokenize(card(VISA), customer=alice_company, by=alice)
    second = tokenize(card(VISA), customer=bob_company, by=bob)
    other = tokenize(card(AMEX, cvc="1234"), customer=alice_company, by=alice)

    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert first.token != second.token


def test_the_fingerprint_is_keyed_not_a_plain_hash(alice_company: Customer, alice: User) -> None:
    import hashlib

    method = tokenize(card(VISA), customer=alice_company, by=alice)
    assert method.fingerprint != hashlib.sha256(VISA.encode()).hexdigest()


def _every_cell() -> tuple[list[str], list[bytes]]:
    """Every value of every table, as text (bytes decoded leniently), via raw SQL."""
    cells: list[str] = []
    blobs: list[bytes] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, bytes):
                        blobs.append(value)
                        cells.append(value.hex())
                    else:
                        cells.append(str(value))
    return cells, blobs


def test_nothing_sensitive_is_at_rest_in_any_table_or_log(
    alice_company: Customer, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cvc = "7319"
    tokenize(card(AMEX, cvc=cvc), customer=alice_company, by=alice)

    cells, blobs = _every_cell()
    assert cells and blobs, "the scan must see the tables"
    assert not [c for c in cells if AMEX in c], "card number found at rest"
    assert not [b for b in blobs if AMEX.encode() in b or cvc.encode() in b]
    assert not [c for c in cells if c == cvc or f'"{cvc}"' in c], "CVC found at rest"
    assert AMEX not in caplog.text and cvc not in caplog.text
    for event in AuditEvent.objects.all():
        assert AMEX not in str(event.details) and cvc not in str(event.details)


def test_no_column_could_hold_a_cvc() -> None:
    names = {f.name for m in (PaymentMethod, DataKey) for f in m._meta.get_fields()}
    assert not {n for n in names if "cvc" in n or "cvv" in n or "security_code" in n}


@pytest.mark.parametrize(
    ("number", "expiry", "cvc", "field"),
    [
        ("4111111111111112", "12/39", "123", "number"),
        ("4111111111111111", "01/20", "123", "expiry"),
        ("9111111111111110", "12/39", "123", "number"),
        ("4111111111111111", "12/39", "", "cvc"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    alice_company: Customer, alice: User, number: str, expiry: str, cvc: str, field: str
) -> None:
    with pytest.raises(InvalidCard) as caught:
        tokenize(card(number, expiry, cvc), customer=alice_company, by=alice)

    assert caught.value.field == field
    assert number not in str(caught.value)
    assert not PaymentMethod.objects.exists()
    assert not AuditEvent.objects.filter(action="vault.card_tokenized").exists()


def test_the_first_tokenize_creates_the_first_data_key_audited(
    alice_company: Customer, alice: User
) -> None:
    assert not DataKey.objects.exists()
    tokenize(card(), customer=alice_company, by=alice)
    key = DataKey.objects.get()
    assert key.state == DataKey.State.ACTIVE
    assert AuditEvent.objects.filter(action="vault.dek_rotated", object_id=str(key.pk)).exists()


@hypothesis_settings(
    deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from(["4", "51", "55", "2221", "34", "37", "6011", "65", "3528", "62"]),
    body=st.text(alphabet="0123456789", min_size=20, max_size=20),
)
def test_any_valid_number_round_trips_through_tokenize_and_reveal(
    alice_company: Customer, alice: User, gateway: User, settings: Any, prefix: str, body: str
) -> None:
    settings.VAULT_REVEAL_RATE_PER_MINUTE = 10_000
    length = 15 if prefix in {"34", "37"} else 16
    partial = (prefix + body)[: length - 1]
    number = partial + luhn.calc_check_digit(partial)
    cvc = "1234" if length == 15 else "123"

    method = tokenize(card(number, cvc=cvc), customer=alice_company, by=alice)

    assert method.last4 == number[-4:]
    assert reveal_card(method.token, purpose="round trip", by=gateway).number == number


@pytest.mark.postgres_only
def test_on_one_connection_the_cards_statement_writes_its_secret(
    alice_company: Customer, alice: User
) -> None:
    """Without the vault role the method's INSERT carries the secret's (a CTE) and its
    audit event: one statement, one commit, no secret without its card."""
    from django.test.utils import CaptureQueriesContext

    from payments.vault.models import CardSecret

    tokenize(card(VISA), customer=alice_company, by=alice)  # the key cached, as in service
    with CaptureQueriesContext(connection) as statements:
        method = tokenize(card(VISA), customer=alice_company, by=alice)

    sql = [q["sql"] for q in statements.captured_queries]
    writes = [s for s in sql if s.lstrip().upper().startswith(("INSERT", "WITH", "BEGIN"))]
    assert len(writes) == 1 and "payments_vault_cardsecret" in writes[0]
    assert CardSecret.objects.filter(token=method.token).exists()
