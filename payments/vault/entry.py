"""End-to-end card entry: what the browser sends and how the vault opens it.

The card form (static/payments/card-entry.js) encrypts, with WebCrypto::

    plaintext = UTF-8 JSON {"number": "...", "expiry": "MM/YY", "cvc": "..."}
    ciphertext = RSA-OAEP(SHA-256, MGF1-SHA-256,
                          label = "tillit.card-entry.v1|" + kid)(public key of kid)
    payload = "v1." + kid + "." + base64url(ciphertext)      (no padding)

The web tier only ever handles ``payload``; it is opened inside ``tokenize``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from payments.vault.cards import Card
from payments.vault.exceptions import InvalidCard

_PAYLOAD = re.compile(r"^v1\.(ek_[0-9a-f]{16})\.([A-Za-z0-9_-]{16,1024})$")
MAX_PLAINTEXT = 512


@dataclass(frozen=True)
class EncryptedCard:
    """Card data as the browser sent it: encrypted to a card-entry key."""

    payload: str = field(repr=False)

    @property
    def kid(self) -> str:
        match = _PAYLOAD.match(self.payload) if isinstance(self.payload, str) else None
        return match.group(1) if match else ""


def open_payload(encrypted: EncryptedCard) -> Card:
    """Decrypt a browser payload into a Card; errors name 'payload' or 'key_id'."""
    from cryptography.exceptions import InvalidKey

    from payments.vault.keys import entry_oaep_padding, entry_private_key

    payload = encrypted.payload
    match = _PAYLOAD.match(payload.strip()) if isinstance(payload, str) else None
    if match is None:
        raise InvalidCard(
            _("the encrypted card data is missing or malformed (is JavaScript on?)"),
            field="payload",
        )
    kid, body = match.groups()
    try:
        ciphertext = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCard(_("the encrypted card data is not base64url"), field="payload") from None
    private = entry_private_key(kid)
    try:
        plaintext = private.decrypt(ciphertext, entry_oaep_padding(kid))
    except (ValueError, InvalidKey):
        raise InvalidCard(
            _("the encrypted card data does not decrypt under its key; reload the page"),
            field="payload",
        ) from None
    try:
        data = json.loads(plaintext[:MAX_PLAINTEXT].decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise InvalidCard(
            _("the decrypted card data is not the expected JSON"), field="payload"
        ) from None
    return Card.from_input(
        number=data.get("number"), expiry=data.get("expiry"), cvc=data.get("cvc", "")
    )
