"""The card vault: tokenization, envelope encryption, key rotation, reveal.

Public API (docs/vault.md)::

    from payments.vault.services import tokenize, reveal_card, delete_payment_method
    from payments.vault.keys import rotate_data_key, reencrypt_vault, rotate_kek

This package's ``__init__`` stays import-light because ``payments.models``
imports ``payments.vault.models`` while the app registry is loading.
"""
