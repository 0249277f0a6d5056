"""A row inserted unless its unique key already holds one, in one statement: the claim
of an Idempotency-Key (security.services.idempotency_keys) on every API POST.

``INSERT ... ON CONFLICT (<unique columns>) DO NOTHING RETURNING <pk>`` answers with the
new row's primary key, or with no row when another holds the key, so the caller needs no
savepoint around an IntegrityError (two round trips fewer per request in autocommit) and
concurrent inserts of one key still give exactly one row. Built once per model and key
from the same INSERT as ``db.compiled.insert``; PostgreSQL's and SQLite's syntax alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

from db.compiled import _insert_sql, mark_inserted
from db.prepared import hot


@functools.cache
def _insert_unless_sql(model: type[Model], unique: tuple[str, ...]) -> tuple[str, tuple[Any, ...]]:
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    sql, fields = _insert_sql(model)
    head, _, returning = sql.partition(" RETURNING ")
    columns = ", ".join(quote(str(model._meta.get_field(name).column)) for name in unique)  # type: ignore[union-attr]
    return hot(f"{head} ON CONFLICT ({columns}) DO NOTHING RETURNING {returning}"), fields


def insert_unless_exists(
    obj: Model, *, unique: Sequence[str], using: str = DEFAULT_DB_ALIAS
) -> bool:
    """Insert ``obj`` (a database-made primary key, no save signals) unless a row with the
    same ``unique`` fields exists; True (and ``obj`` saved, its pk set) when it was."""
    connection = connections[using]
    sql, fields = _insert_unless_sql(type(obj), tuple(unique))
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    mark_inserted(obj, row[0], using=using)
    return True
