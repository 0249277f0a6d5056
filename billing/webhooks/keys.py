"""Endpoint secrets: made here, sealed with the platform's keyring, opened only to sign.

A secret is ``whsec_`` and 32 random bytes (base64url). It is shown to staff once, when
made (registration or roll), and otherwise leaves this module only as the HMAC key of
``signing.signature_header``: never logged, audited, rendered or emailed. The keyring's
KEK seals it (AES-256-GCM) with the endpoint's public id and the slot bound as associated
data, so a sealed secret copied to another endpoint or slot does not open.
"""

from __future__ import annotations

import base64
import secrets

from billing.webhooks.exceptions import WebhookError
from security.keyring import KeyringError, Wrapped, get_keyring

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret (256 bits)."""
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _context(public_id: str, slot: str) -> bytes:
    return f"tillit.webhooks.secret|{public_id}|{slot}".encode()


def seal(secret: str, *, public_id: str, slot: str = "current") -> Wrapped:
    """The secret encrypted under the keyring's current KEK."""
    try:
        return get_keyring().wrap(secret.encode(), context=_context(public_id, slot))
    except KeyringError as exc:
        raise WebhookError(f"the keyring cannot seal the secret: {exc}", field="secret") from None


def open_sealed(
    blob: bytes | memoryview, *, version: int, public_id: str, slot: str = "current"
) -> str:
    """The secret of a sealed blob (for signing only)."""
    try:
        plain = get_keyring().unwrap(
            bytes(blob), version=version, context=_context(public_id, slot)
        )
    except KeyringError as exc:
        raise WebhookError(
            f"the endpoint's secret cannot be opened: {exc}", field="secret"
        ) from None
    return plain.decode()


def reseal(
    blob: bytes | memoryview, *, version: int, public_id: str, slot: str = "current"
) -> Wrapped:
    """A sealed secret sealed again under the keyring's current KEK (KEK rotation): opened
    and sealed here, so the secret never leaves this module."""
    return seal(
        open_sealed(blob, version=version, public_id=public_id, slot=slot),
        public_id=public_id,
        slot=slot,
    )
