"""Payments tables. The vault's live in payments.vault.models (re-exported here)."""

from payments.vault.models import DataKey, EntryKey, PaymentMethod, RevealWindow

__all__ = ["DataKey", "EntryKey", "PaymentMethod", "RevealWindow"]
