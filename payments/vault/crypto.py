"""The vault's ciphertext format (docs/vault.md, "Formats").

A card number is sealed with AES-256-GCM under a data key (DEK)::

    blob = version (1 byte, 0x01) || dek_id (4 bytes, big-endian)
           || nonce (12 random bytes) || ciphertext || tag (16 bytes)
    associated data = b"tillit.vault.card.v1|" || version || dek_id || b"|" || token

The header names the key (as Tink's output prefix and Vault's ``v1:`` do); the
associated data binds the header and the record's token, so a blob copied to
another row, or with its key id edited, fails to decrypt.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.vault.exceptions import DecryptionFailed

VERSION = 1
HEADER_BYTES = 5
NONCE_BYTES = 12
TAG_BYTES = 16
_AD_LABEL = b"tillit.vault.card.v1|"
MAX_KEY_ID = 2**32 - 1


def header(key_id: int) -> bytes:
    return bytes([VERSION]) + key_id.to_bytes(4, "big")


def parse_header(blob: bytes) -> int:
    """The DEK id a blob names; DecryptionFailed for an unknown version or a short blob."""
    if len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES + 1:
        raise DecryptionFailed("the ciphertext is truncated", field="ciphertext")
    if blob[0] != VERSION:
        raise DecryptionFailed(
            f"unknown ciphertext version {blob[0]} (expected {VERSION})", field="ciphertext"
        )
    return int.from_bytes(blob[1:HEADER_BYTES], "big")


def _associated_data(head: bytes, token: str) -> bytes:
    return _AD_LABEL + head + b"|" + token.encode("utf-8")


def seal(plaintext: bytes, *, key: bytes, key_id: int, token: str) -> bytes:
    """Encrypt under DEK ``key_id`` bound to ``token``."""
    head = header(key_id)
    nonce = secrets.token_bytes(NONCE_BYTES)
    return head + nonce + AESGCM(key).encrypt(nonce, plaintext, _associated_data(head, token))


def open_sealed(blob: bytes, *, key: bytes, key_id: int, token: str) -> bytes:
    """Decrypt a blob made by ``seal``; any change, move or wrong key raises DecryptionFailed."""
    if parse_header(blob) != key_id:
        raise DecryptionFailed("the ciphertext names another data key", field="ciphertext")
    head = blob[:HEADER_BYTES]
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(
            nonce, blob[HEADER_BYTES + NONCE_BYTES :], _associated_data(head, token)
        )
    except InvalidTag:
        raise DecryptionFailed(
            "the ciphertext does not verify (altered, or belongs to another record)",
            field="ciphertext",
        ) from None


def new_key() -> bytes:
    """A fresh 256-bit AES key."""
    return AESGCM.generate_key(bit_length=256)


def new_key_id() -> int:
    """A random non-zero 32-bit key id (random, like Tink's, so ids reveal no count)."""
    return secrets.randbelow(MAX_KEY_ID) + 1
