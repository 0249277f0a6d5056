"""Every state change of the vault, one module per domain action:

- ``cards``: tokenize a card, reveal it (the only way back), delete it; a key fault
  reported; the card-entry key a form encrypts to;
- ``key_rotation``: both kinds of key (data keys, card-entry keys) rotated by one
  implementation (``KeyKind``); the active data key for an encryption;
- ``reencryption``: a retired data key's records moved to the active one, then the
  old key destroyed;
- ``kek``: every live key rewrapped under a new KEK version; old versions retired;
- ``orphans``: card secrets no payment method refers to, erased;
- ``key_schedule``: the hourly job that does what is due.

Reading keys (the keyring, a key unwrapped) is ``payments.vault.keys``.
Callers use this package: ``from payments.vault.services import tokenize``.
"""

from payments.vault.services.cards import (
    RevealedCard,
    card_entry_key,
    card_fingerprint,
    card_payments_unavailable,
    delete_payment_method,
    report_key_fault,
    reveal_card,
    tokenize,
)
from payments.vault.services.kek import KekRotationReport, retire_kek_versions, rotate_kek
from payments.vault.services.key_rotation import (
    current_entry_key,
    expire_entry_keys,
    forget_encryption_key,
    rotate_data_key,
    rotate_entry_key,
)
from payments.vault.services.key_schedule import rotate_due_keys
from payments.vault.services.orphans import purge_orphan_secrets
from payments.vault.services.reencryption import (
    ReencryptionReport,
    destroy_data_key,
    reencrypt_vault,
)

__all__ = [
    "KekRotationReport",
    "ReencryptionReport",
    "RevealedCard",
    "card_entry_key",
    "card_fingerprint",
    "card_payments_unavailable",
    "current_entry_key",
    "delete_payment_method",
    "destroy_data_key",
    "expire_entry_keys",
    "forget_encryption_key",
    "purge_orphan_secrets",
    "reencrypt_vault",
    "report_key_fault",
    "retire_kek_versions",
    "reveal_card",
    "rotate_data_key",
    "rotate_due_keys",
    "rotate_entry_key",
    "rotate_kek",
    "tokenize",
]
