"""The ciphertext format: tampering, moving or mislabelling a blob fails; errors are clear."""

from __future__ import annotations

import pytest

from billing.models import Customer
from payments.models import CardSecret, DataKey, PaymentMethod
from payments.vault import crypto
from payments.vault.exceptions import DecryptionFailed, KeyUnavailable
from payments.vault.keys import unwrap_data_key
from payments.vault.services import reveal_card, tokenize
from security.models import User
from tests.payments.conftest import MASTERCARD, VISA, card, secret_of

pytestmark = pytest.mark.django_db


def _set_blob(method: PaymentMethod, blob: bytes) -> None:
    CardSecret.objects.filter(token=method.token).update(ciphertext=blob)


def _sealed(method: PaymentMethod) -> bytes:
    secret = secret_of(method)
    assert secret is not None
    return secret.sealed()


def _key(method: PaymentMethod) -> DataKey:
    secret = secret_of(method)
    assert secret is not None
    return secret.data_key


def test_the_blob_starts_with_version_and_data_key_id(alice_card: PaymentMethod) -> None:
    blob = _sealed(alice_card)
    assert blob[0] == crypto.VERSION
    assert int.from_bytes(blob[1:5], "big") == _key(alice_card).pk
    assert len(blob) == 5 + 12 + len(VISA) + 16


def test_a_tampered_ciphertext_fails(alice_card: PaymentMethod, gateway: User) -> None:
    blob = bytearray(_sealed(alice_card))
    blob[-1] ^= 0x01
    _set_blob(alice_card, bytes(blob))
    with pytest.raises(DecryptionFailed, match="does not verify"):
        reveal_card(alice_card.token, purpose="test", by=gateway)


def test_a_ciphertext_copied_onto_another_row_fails(
    alice_company: Customer, alice: User, gateway: User, alice_card: PaymentMethod
) -> None:
    other = tokenize(card(MASTERCARD), customer=alice_company, by=alice)
    _set_blob(other, _sealed(alice_card))
    with pytest.raises(DecryptionFailed, match="another record"):
        reveal_card(other.token, purpose="test", by=gateway)


def test_wrong_associated_data_fails(alice_card: PaymentMethod) -> None:
    key = _key(alice_card)
    with pytest.raises(DecryptionFailed):
        crypto.open_sealed(
            _sealed(alice_card),
            key=unwrap_data_key(key),
            key_id=key.id,
            token=alice_card.token + "x",
        )


def test_an_edited_key_id_in_the_header_fails(alice_card: PaymentMethod) -> None:
    key = _key(alice_card)
    blob = bytearray(_sealed(alice_card))
    blob[4] ^= 0x01
    with pytest.raises(DecryptionFailed, match="another data key"):
        crypto.open_sealed(bytes(blob), key=unwrap_data_key(key), key_id=key.id, token="t")


@pytest.mark.parametrize(
    ("blob", "message"),
    [(b"\x01\x00", "truncated"), (b"\x02" + b"\x00" * 40, "unknown ciphertext version")],
)
def test_a_malformed_blob_is_refused_clearly(blob: bytes, message: str) -> None:
    with pytest.raises(DecryptionFailed, match=message) as caught:
        crypto.parse_header(blob)
    assert caught.value.field == "ciphertext"


def test_a_wrapped_data_key_copied_to_another_key_id_does_not_unwrap(
    alice_card: PaymentMethod,
) -> None:
    key = _key(alice_card)
    clone = DataKey(
        id=key.id ^ 1, state=DataKey.State.DECRYPT_ONLY, kek_version=key.kek_version,
        wrapped_key=key.wrapped_key,
    )  # fmt: skip
    with pytest.raises(KeyUnavailable, match="cannot be unwrapped"):
        unwrap_data_key(clone)


def test_an_unknown_kek_version_is_named(alice_card: PaymentMethod) -> None:
    key = _key(alice_card)
    key.kek_version = 99
    with pytest.raises(KeyUnavailable, match="no KEK version 99"):
        unwrap_data_key(key)
