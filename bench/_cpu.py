"""CPU time of the server's processes (/proc), for benchmarks that compare costs on a shared
machine: a process's CPU seconds do not grow with other processes' load as wall time does."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (e.g. gunicorn's workers)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_by_process(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes so far (gone ones left out)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def database_backends() -> list[int]:
    """The PostgreSQL server processes serving this database's other connections."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


class ServerCpu:
    """CPU seconds spent by a server's workers and their database backends between
    ``start`` and ``stop`` (backends that appear meanwhile count from zero)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.before: dict[int, float] = {}

    def _now(self) -> dict[int, float]:
        return cpu_by_process(children(self.server_pid) + database_backends())

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> float:
        after = self._now()
        return sum(seconds - self.before.get(pid, 0.0) for pid, seconds in after.items())
