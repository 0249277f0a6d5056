"""django-q2 jobs for the vault: thin wrappers around the key services."""

from __future__ import annotations

from typing import Any

from audit import SYSTEM
from payments.vault.services import reencrypt_vault, rotate_due_keys


def rotate_due_keys_task() -> dict[str, Any]:
    """Hourly: rotate the DEK / entry key when due, re-encrypt, destroy retired DEKs."""
    return rotate_due_keys(by=SYSTEM)


def reencrypt_vault_task() -> dict[str, Any]:
    """After a rotation: move records off decrypt-only DEKs, then destroy those DEKs."""
    report = reencrypt_vault(by=SYSTEM)
    return {"reencrypted": report.reencrypted, "destroyed": report.destroyed}
