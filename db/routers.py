"""The vault's second database alias (docs/vault.md, "The vault role").

The vault's secret table is read and written through the ``vault`` alias: a second
connection to the same PostgreSQL database as another role (``VAULT_DATABASE_URL``),
the only role allowed to read that table; the web application's role (``default``) has
its privileges on it revoked. An install without ``VAULT_DATABASE_URL`` (the demo's
SQLite, a simple server) has no ``vault`` alias: the vault's table is then read and
written on ``default``, in its transactions, since a second connection with the same
credentials would isolate nothing and would take its writes out of the caller's
transaction.

A model opts in with the class attribute ``vault_table = True``; ``VaultRouter`` sends
its reads and writes to ``vault_alias()`` and keeps migrations on ``default`` (the
migrating role owns every table and sets the grants; the vault role migrates nothing).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

VAULT_DB_ALIAS = "vault"


def vault_alias() -> str:
    """``vault`` when VAULT_DATABASE_URL configures it, else ``default``
    (``settings.VAULT_DATABASE_ALIAS``)."""
    # Read on every call: tests that show the role separation configure it for one test
    # (tests/payments/vault_role.py).
    return str(settings.VAULT_DATABASE_ALIAS)


def has_vault_connection() -> bool:
    """Whether the vault's table lives behind a connection of its own (a second role)."""
    return vault_alias() != DEFAULT_DB_ALIAS


def _is_vault_model(model: Any) -> bool:
    return bool(getattr(model, "vault_table", False))


class VaultRouter:
    """Vault models on the vault alias; everything else, and every migration, on default."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return vault_alias() if _is_vault_model(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return vault_alias() if _is_vault_model(model) else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # Both aliases name the same database (one schema): a vault row may refer to
        # a data key loaded on default.
        aliases = {obj1._state.db, obj2._state.db}
        return True if aliases <= {DEFAULT_DB_ALIAS, VAULT_DB_ALIAS} else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == VAULT_DB_ALIAS else None
