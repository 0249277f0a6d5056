"""The one place that asks which database runs: PostgreSQL (production and the test
suite) or SQLite (the zero-setup demo).

A module that runs different code on the two asks ``is_postgresql()`` here instead of
reading ``connection.vendor`` itself, and the statements that differ in text only are
functions of this module. On PostgreSQL a few hot paths write a row and its audit event
in one statement (data-modifying ``WITH``), take advisory locks, or update a batch from
arrays (``unnest``); SQLite has none of these, and serializes writers by itself.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections


def is_postgresql(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the connection ``using`` is PostgreSQL's (else the demo's SQLite)."""
    return bool(connections[using].vendor == "postgresql")


def advisory_xact_lock(key: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Take PostgreSQL's transaction-scoped advisory lock ``key`` (held until the
    transaction ends). On SQLite nothing: it serializes writers by itself."""
    if is_postgresql(using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def share_lock_clause(using: str = DEFAULT_DB_ALIAS) -> str:
    """``" FOR SHARE"`` to end a SELECT that must keep its rows from changing until the
    transaction ends (PostgreSQL); ``""`` on SQLite, which has no row locks."""
    return " FOR SHARE" if is_postgresql(using) else ""
