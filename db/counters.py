"""Counters added to in place: rows inserted, or on conflict added to, in one statement.

``add_to_counters`` writes several tables' counter rows (``Counters``) at once: each
table's rows are one multi-row ``INSERT ... ON CONFLICT (key) DO UPDATE SET n = n +
EXCLUDED.n``; on PostgreSQL the tables are joined into one statement by data-modifying
``WITH`` (one round trip, one plan), on SQLite (the demo) one statement per table.

The rows of a table are written in the order given: callers that write the same rows
from concurrent transactions pass them sorted, so that their row locks are taken in the
same order (no deadlock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from db.dialect import is_postgresql
from db.prepared import hot


@dataclass(frozen=True)
class Counters:
    """Rows for ``table``: ``unique`` columns name the row, ``added`` columns are added to
    what is stored, ``greatest`` columns keep the larger of the stored and the new value
    (a NULL counts as no value); ``rows`` hold the values in that order of columns."""

    table: str
    unique: tuple[str, ...]
    added: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    greatest: tuple[str, ...] = ()


def _statement(counters: Counters, postgresql: bool, quote: Any) -> tuple[str, list[Any]]:
    columns = (*counters.unique, *counters.added, *counters.greatest)
    table = quote(counters.table)
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sets = [f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}" for c in counters.added]
    for column in counters.greatest:
        stored, new = f"{table}.{quote(column)}", f"EXCLUDED.{quote(column)}"
        if postgresql:  # GREATEST ignores a NULL
            sets.append(f"{quote(column)} = GREATEST({stored}, {new})")
        else:
            sets.append(
                f"{quote(column)} = MAX(COALESCE({stored}, {new}), COALESCE({new}, {stored}))"
            )
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)})"  # noqa: S608 (names from model metadata)
        f" VALUES {', '.join([marks] * len(counters.rows))}"
        f" ON CONFLICT ({', '.join(quote(c) for c in counters.unique)}) DO UPDATE SET "
        + ", ".join(sets)
    )
    params = [value for row in counters.rows for value in row]
    return sql, params


def add_to_counters(*tables: Counters, using: str = DEFAULT_DB_ALIAS) -> None:
    """Insert or add to the counter rows of ``tables`` (those with rows) in one statement
    on PostgreSQL. Table and column names come from model metadata, never from input."""
    connection = connections[using]
    postgresql = is_postgresql(using)
    statements = [
        _statement(counters, postgresql, connection.ops.quote_name)
        for counters in tables
        if counters.rows
    ]
    if not statements:
        return
    with connection.cursor() as cursor:
        if not postgresql:
            for sql, params in statements:
                cursor.execute(sql, params)
            return
        *first, (last_sql, _last_params) = statements
        ctes = [f"w{n} AS ({sql})" for n, (sql, _params) in enumerate(first)]
        # Prepared on the connection (db.prepared): a hot path writes it with every payment,
        # in a few shapes only (the keys an attempt has, the tables an event writes).
        sql = hot((f"WITH {', '.join(ctes)} " if ctes else "") + last_sql)
        cursor.execute(sql, [value for _sql, params in statements for value in params])
