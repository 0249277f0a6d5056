"""The one place that asks which database runs: PostgreSQL (production and the test
suite) or SQLite (the zero-setup demo).

A module that runs different code on the two asks ``is_postgresql()`` here instead of
reading ``connection.vendor`` itself, and the statements that differ in text only are
functions of this module. On PostgreSQL a few hot paths write a row and its audit event
in one statement (data-modifying ``WITH``), take advisory locks, or update a batch from
arrays (``unnest``); SQLite has none of these, and serializes writers by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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


def insert_rows(
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Write plain rows (no model instances, nothing refers to them yet) into ``table``:
    by COPY on PostgreSQL (psycopg's own cursor, under Django's wrapper), by one
    executemany elsewhere. ``table`` and ``columns`` are names from model metadata."""
    connection = connections[using]
    quoted_table = connection.ops.quote_name(table)
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if is_postgresql(using):
            with cursor.cursor.copy(f"COPY {quoted_table} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {quoted_table} ({quoted}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(sql, list(rows))
