"""The card vault: tokenization, envelope encryption, key rotation, reveal.

Public API (docs/vault.md)::

    from payments.vault import tokenize, reveal_card, delete_payment_method
    from payments.vault import rotate_data_key, reencrypt_vault, rotate_kek

``payments.models`` imports ``payments.vault.models`` while the app registry is
loading, so the services are re-exported lazily (PEP 562) rather than imported
here at once.
"""

from __future__ import annotations

from payments.lazy_exports import lazy_exports

_EXPORTS = {
    "tokenize": "payments.vault.services",
    "reveal_card": "payments.vault.services",
    "delete_payment_method": "payments.vault.services",
    "Card": "payments.vault.cards",
    "EncryptedCard": "payments.vault.entry",
    "rotate_data_key": "payments.vault.services",
    "reencrypt_vault": "payments.vault.services",
    "rotate_kek": "payments.vault.services",
    "rotate_entry_key": "payments.vault.services",
    "current_entry_key": "payments.vault.services",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
