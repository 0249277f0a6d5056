"""Which statements a PostgreSQL connection prepares: the hot ones, and no other.

With server-side binding (``DATABASE_SERVER_SIDE_BINDING``, on by default) psycopg
can prepare a statement on the connection, after which PostgreSQL neither parses nor
plans it again. Left to itself (``prepare_threshold``) psycopg prepared every
statement run often enough, the bank-file import's too, and a generic plan made for a
table still empty at the start of the import turned into a scan per slice as the table
grew (docs/performance.md, "Prepared statements"). Here a statement is prepared from
its first run if it was marked ``hot`` (the compiled queries of ``db.compiled`` and the
statements composed from them), and never otherwise.
"""

from __future__ import annotations

import functools
from typing import Any

_HOT: set[str] = set()


def hot(sql: str) -> str:
    """Mark ``sql`` (a fixed text, its values parameters) as one to prepare; returns it."""
    _HOT.add(sql)
    return sql


def is_hot(query: object) -> bool:
    """Whether ``query`` was marked by ``hot``: the statements prepared on a connection."""
    return isinstance(query, str) and query in _HOT


@functools.cache
def preparing_cursor_class() -> type:
    """The cursor for server-side binding that prepares the hot statements only
    (a subclass of Django's ``ServerBindingCursor``, which the engine installs)."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if kwargs.get("prepare") is None:
                kwargs["prepare"] = is_hot(query)
            return super().execute(query, params, **kwargs)  # type: ignore[misc]

    return PreparingCursor
