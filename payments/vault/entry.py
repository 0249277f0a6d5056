"""End-to-end card entry: what the browser sends and how the vault opens it.

The card form (static/payments/card-entry.js) encrypts, with WebCrypto::

    plaintext = UTF-8 JSON {"number": "...", "expiry": "MM/YY", "cvc": "...",
                            "nonce": "<the form's one-time nonce>"}
    ciphertext = RSA-OAEP(SHA-256, MGF1-SHA-256,
                          label = "tillit.card-entry.v1|" + kid)(public key of kid)
    payload = "v1." + kid + "." + base64url(ciphertext)      (no padding)

The web tier only ever handles ``payload``; it is opened inside ``tokenize``.

**Binding** (issue 17, item 3: one customer's payload, posted by another, was charged
and saved to the second account). Each card form carries a one-time nonce
(``issue_entry_nonce``): signed with the server's secret for the signed-in user *and*
their session, valid VAULT_ENTRY_NONCE_SECONDS, and sealed inside the ciphertext by the
browser, so it cannot be swapped. Opening a payload checks it against the session and
user that post it and spends it (``UsedEntryNonce``, unique): a payload from another
session or user, an expired one, one without a nonce or one sent twice is refused
(``vault.card_payload_refused``, with the reason) and stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from payments.vault.cards import Card
from payments.vault.exceptions import InvalidCard
from security.actors import Actor

_PAYLOAD = re.compile(r"^v1\.(ek_[0-9a-f]{16})\.([A-Za-z0-9_-]{16,1024})$")
MAX_PLAINTEXT = 512


def _nonce_salt(session_key: str) -> str:
    return "tillit.card-entry.nonce|" + hashlib.sha256(session_key.encode()).hexdigest()


def issue_entry_nonce(*, user_id: int, session_key: str) -> str:
    """A one-time nonce for one card form, bound to this user and session (signed)."""
    return signing.dumps(
        {"u": user_id, "n": secrets.token_urlsafe(18)}, salt=_nonce_salt(session_key)
    )


def nonce_for_request(request: HttpRequest) -> str:
    """The nonce a card form rendered for this request carries (the session is saved
    first, so it has a key to bind to)."""
    if not request.session.session_key:
        request.session.save()
    user_id = int(request.user.pk or 0)
    return issue_entry_nonce(user_id=user_id, session_key=str(request.session.session_key))


@dataclass(frozen=True)
class EncryptedCard:
    """Card data as the browser sent it: encrypted to a card-entry key, with the user and
    session that sent it (the payload's nonce must have been issued to them)."""

    payload: str = field(repr=False)
    user_id: int | None = None
    session_key: str = field(default="", repr=False)

    @classmethod
    def posted(cls, request: HttpRequest, payload: str) -> EncryptedCard:
        """The payload as posted in this request, bound to its user and session."""
        return cls(
            payload=payload,
            user_id=request.user.pk,
            session_key=str(request.session.session_key or ""),
        )

    @property
    def kid(self) -> str:
        match = _PAYLOAD.match(self.payload) if isinstance(self.payload, str) else None
        return match.group(1) if match else ""


def _spend_nonce(encrypted: EncryptedCard, nonce: object, *, by: Actor | None) -> None:
    """Check the payload's nonce against who posts it, and use it up; else refuse, audited."""
    reason = ""
    value: Any = None
    if not isinstance(nonce, str) or not nonce or not encrypted.session_key:
        reason = "no_nonce"
    else:
        try:
            value = signing.loads(
                nonce,
                salt=_nonce_salt(encrypted.session_key),
                max_age=settings.VAULT_ENTRY_NONCE_SECONDS,
            )
        except signing.SignatureExpired:
            reason = "expired"
        except signing.BadSignature:
            reason = "another_session"
        else:
            if not isinstance(value, dict) or value.get("u") != encrypted.user_id:
                reason = "another_user"
    if not reason:
        from payments.vault.models import UsedEntryNonce

        digest = hashlib.sha256(str(value["n"]).encode()).hexdigest()
        try:
            with transaction.atomic():
                UsedEntryNonce.objects.create(nonce_sha256=digest, used_at=timezone.now())
        except IntegrityError:
            reason = "replayed"
    if reason:
        with transaction.atomic():
            record("vault.card_payload_refused", actor=by, reason=reason)
        raise InvalidCard(
            _(
                "this card form was already sent, has expired or belongs to another session;"
                " reload the page and enter the card again"
            ),
            field="payload",
        )


def open_payload(encrypted: EncryptedCard, *, by: Actor | None = None) -> Card:
    """Decrypt a browser payload into a Card, spending its one-time nonce; errors name
    'payload' or 'key_id'."""
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
    _spend_nonce(encrypted, data.get("nonce"), by=by)
    return Card.from_input(
        number=data.get("number"), expiry=data.get("expiry"), cvc=data.get("cvc", "")
    )
