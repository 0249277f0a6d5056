"""Django's PostgreSQL backend, with a health check that needs no round trip,
psycopg's own (compiled) loader for ``timestamptz`` values, and, with server-side
binding, a cursor that prepares the hot statements only (``db.prepared``).

``settings.DATABASES`` names this package as the engine for a PostgreSQL URL; all else
is Django's own backend.
"""

from __future__ import annotations

import datetime
import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import pq

from db.prepared import preparing_cursor_class

_TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
# psycopg's default loader: its C implementation when psycopg-binary (or psycopg-c) is
# installed, which cannot be subclassed.
_NATIVE_TIMESTAMPTZ: Any = psycopg.adapters.get_loader(_TIMESTAMPTZ_OID, pq.Format.TEXT)


class _DjangoUtcLoader(BaseTzLoader):
    timezone = datetime.UTC


class UtcTimestamptzLoader:
    """The ``timestamptz`` loader of a connection whose time zone is UTC (``USE_TZ``).

    Django registers a Python subclass of psycopg's Python loader, which parses every
    value in Python and then replaces its time zone with UTC: 7% of the Python
    instructions of a card payment (docs/decisions.md, 25). psycopg's own loader gives
    the same value, in C, when the session's time zone is UTC (Django sets it so on
    every connection): its values then carry ``datetime.UTC``. On a session whose time
    zone is something else, this falls back to Django's loader. ``timezone`` is what
    Django's ``create_cursor`` compares with the connection's.
    """

    timezone = datetime.UTC
    format = pq.Format.TEXT

    def __new__(cls, oid: int, context: Any = None) -> Any:
        connection = getattr(context, "connection", None)
        if connection is not None and connection.info.timezone is datetime.UTC:
            return _NATIVE_TIMESTAMPTZ(oid, context)
        return _DjangoUtcLoader(oid, context)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        """Django's, with the cursor that prepares only the hot statements when the
        connection binds parameters server-side (``db.prepared``)."""
        params: dict[str, Any] = super().get_connection_params()
        if params.get("cursor_factory") is base.ServerBindingCursor:
            params["cursor_factory"] = preparing_cursor_class()
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.timezone is datetime.UTC:
            connection.adapters.register_loader(_TIMESTAMPTZ_OID, UtcTimestamptzLoader)
        return connection

    def is_usable(self) -> bool:
        """Whether a persistent connection can serve the next request (CONN_HEALTH_CHECKS).

        Django asks with ``SELECT 1``: a round trip at the start of every request, which
        cost as much as one of a card payment's statements. An idle connection has
        nothing to read; the server writes to one only to end it (a restart,
        ``pg_terminate_backend``, an idle timeout) or to notify it. So a closed or broken
        connection is not usable; an idle one with nothing to read is; anything else
        (something to read, or a transaction left open) is asked with ``SELECT 1``.
        """
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return bool(super().is_usable())
        try:
            poller = select.poll()  # not select.select: no limit on the descriptor's number
            poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
            quiet = not poller.poll(0)
        except (OSError, ValueError, psycopg.Error):  # no socket any more, or no poll here
            quiet = False
        return True if quiet else bool(super().is_usable())
