"""Fixed-window counters shared by every process: one statement adds a hit to each named
counter and returns its count in the current window.

A counter is one row per key (its window's start and its hits); the upsert starts the
count again when the window has moved on, so the table holds one row per key and needs no
clean-up job. Concurrent hits on one key are serialized by the row's lock: none is lost,
whatever the number of processes or hosts (REST framework's throttles read a list from the
cache and write it back, which loses hits under concurrency and, with the default cache,
counts per process). ``INSERT ... ON CONFLICT ... RETURNING`` is PostgreSQL's and SQLite's
(3.35+) alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connections

from db.prepared import hot


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
