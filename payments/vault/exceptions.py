"""Vault errors. Messages name the field and never echo a card number or CVC."""

from __future__ import annotations

from payments.exceptions import PaymentsError


class VaultError(PaymentsError):
    """Base of the vault's errors."""


class InvalidCard(VaultError):
    """The card data is malformed: ``field`` is number, expiry, cvc, payload or key_id."""


class DecryptionFailed(VaultError):
    """A ciphertext is malformed, altered, moved to another row or under a destroyed key."""


class KeyUnavailable(VaultError):
    """The key a ciphertext names is unknown, destroyed, or its KEK version is missing."""


class KeysUnavailable(KeyUnavailable):
    """The vault's keys cannot be used at all: the keyring is missing, unreadable or
    malformed, or its KEK does not unwrap the data keys (a wrong or replaced keyring).

    An operator's fault, not the customer's: the message (which may name a key or a
    file) is for the audit log and the staff alert, never for a customer
    (``payments.vault.services.card_payments_unavailable``)."""


class RevealRefused(VaultError):
    """A reveal was refused (no permission, rate limit, unknown token); it is audited."""


class PaymentMethodGone(VaultError):
    """The payment method was deleted and its ciphertext erased."""
