"""Counters kept in the database, each written by one statement, for every process alike.

Two kinds:

- ``add_to_counters`` adds to counter rows (``Counters``) of several tables at once: each
  table's rows are one ``INSERT ... ON CONFLICT (key) DO UPDATE SET n = n + EXCLUDED.n``;
  on PostgreSQL the rows come from one array per column (``unnest``) and the tables are
  joined into one statement by data-modifying ``WITH`` (one round trip, one plan, a text
  psycopg parses once), on SQLite (the demo) one multi-row statement per table (the
  fraud engine's velocity counters). The rows of a table are written in the order given:
  callers that write the same rows from concurrent transactions pass them sorted, so that
  their row locks are taken in the same order (no deadlock).
- ``count_hits`` keeps fixed-window counters: one statement adds a hit to each named
  counter and returns its count in the current window (the API's throttles). A counter is
  one row per key (its window's start and its hits); the upsert starts the count again
  when the window has moved on, so the table holds one row per key and needs no clean-up
  job. Concurrent hits on one key are serialized by the row's lock: none is lost, whatever
  the number of processes or hosts (REST framework's throttles read a list from the cache
  and write it back, which loses hits under concurrency and, with the default cache,
  counts per process). ``INSERT ... ON CONFLICT ... RETURNING`` is PostgreSQL's and
  SQLite's (3.35+) alike.
"""

from __future__ import annotations

import functools
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


def _statement(counters: Counters, connection: Any, postgresql: bool) -> tuple[str, list[Any]]:
    quote = connection.ops.quote_name
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
    names = ", ".join(quote(c) for c in columns)
    conflict = (
        f" ON CONFLICT ({', '.join(quote(c) for c in counters.unique)}) DO UPDATE SET "
        + ", ".join(sets)
    )
    if postgresql:
        # One array per column, whatever the number of rows: psycopg parses a statement's
        # text once only while it has at most 50 parameters (a payment's twelve bucket
        # rows as VALUES had 84), and the text no longer depends on the number of rows.
        kinds = _column_types(counters.table, columns, connection.alias)
        arrays = ", ".join(f"%s::{kind}[]" for kind in kinds)
        sql = (
            f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays})"  # noqa: S608 (names from model metadata)
            f" WITH ORDINALITY AS v({names}, _n) ORDER BY _n{conflict}"
        )
        return sql, [list(column) for column in zip(*counters.rows, strict=True)]
    sql = (
        f"INSERT INTO {table} ({names})"  # noqa: S608 (names from model metadata)
        f" VALUES {', '.join([marks] * len(counters.rows))}{conflict}"
    )
    params = [value for row in counters.rows for value in row]
    return sql, params


@functools.cache
def _column_types(table: str, columns: tuple[str, ...], using: str) -> tuple[str, ...]:
    """The database types of ``table``'s ``columns``, from its model's fields."""
    from django.apps import apps

    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    fields = {field.column: field for field in model._meta.concrete_fields}
    return tuple(str(fields[column].db_type(connections[using])) for column in columns)


def add_to_counters(
    *tables: Counters,
    also: Sequence[tuple[str, Sequence[Any]]] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> None:
    """Insert or add to the counter rows of ``tables`` (those with rows) in one statement
    on PostgreSQL. Table and column names come from model metadata, never from input.

    ``also``: other writes of the same moment, each a fixed INSERT text and its parameters
    (e.g. ``db.compiled.insert_sql``), run in the same statement on PostgreSQL (one round
    trip: a data-modifying ``WITH`` each) and one after the other elsewhere."""
    connection = connections[using]
    postgresql = is_postgresql(using)
    statements: list[tuple[str, Sequence[Any]]] = [
        _statement(counters, connection, postgresql) for counters in tables if counters.rows
    ]
    if not postgresql:
        with connection.cursor() as cursor:
            for sql, params in [*statements, *also]:
                cursor.execute(sql, params)
        return
    statements = [*also, *statements]
    if not statements:
        return
    *first, (last_sql, _last_params) = statements
    ctes = [f"w{n} AS ({sql})" for n, (sql, _params) in enumerate(first)]
    # Prepared on the connection (db.prepared): a hot path writes it with every payment,
    # in a few shapes only (the keys an attempt has, the tables an event writes).
    sql = hot((f"WITH {', '.join(ctes)} " if ctes else "") + last_sql)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for _sql, params in statements for value in params])


@functools.cache
def _upsert_sql(table: str, rows: int, quoted: tuple[str, str, str, str]) -> str:
    quoted_table, key, window, hits = quoted
    values = ", ".join(["(%s, %s, 1)"] * rows)
    return hot(
        f"INSERT INTO {quoted_table} ({key}, {window}, {hits}) VALUES {values}"  # noqa: S608
        f" ON CONFLICT ({key}) DO UPDATE SET"
        f" {hits} = CASE WHEN {quoted_table}.{window} = EXCLUDED.{window}"
        f" THEN {quoted_table}.{hits} + 1 ELSE 1 END,"
        f" {window} = EXCLUDED.{window}"
        f" RETURNING {key}, {hits}"
    )


def count_hits(
    table: str,
    counters: Sequence[tuple[str, int]],
    *,
    columns: tuple[str, str, str] = ("key", "window_start", "hits"),
    using: str = DEFAULT_DB_ALIAS,
) -> dict[str, int]:
    """One hit more on each ``(key, window start)`` counter of ``table`` (keys distinct);
    each key's hits in that window, this one included. ``table`` and ``columns`` are
    names from model metadata."""
    if not counters:
        return {}
    quote = connections[using].ops.quote_name
    names = (quote(table), *(quote(column) for column in columns))
    sql = _upsert_sql(table, len(counters), names)
    params = [value for counter in counters for value in counter]
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return {str(key): int(hits) for key, hits in cursor.fetchall()}
