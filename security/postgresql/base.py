"""Django's PostgreSQL backend, with a health check that needs no round trip.

``settings.DATABASES`` names this package as the engine for a PostgreSQL URL; all else
is Django's own backend.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
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
