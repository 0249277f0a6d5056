"""CPU time of the server's processes (/proc), for benchmarks that compare costs on a shared
machine: a process's CPU seconds do not grow with other processes' load as wall time does."""

from __future__ import annotations

import os
import threading
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


def database_backends(database: str, exclude: int) -> list[int]:
    """The PostgreSQL server processes connected to ``database`` on this host (their
    process titles name it), but ``exclude`` (this script's own connection's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


class ServerCpu:
    """CPU seconds spent by a server's workers and their database backends between
    ``start`` and ``stop``. Sampled every ``every`` seconds meanwhile, so that a process
    that ends (a connection closed at its maximum age, a worker replaced) keeps what it
    had spent by its last sample; one that appears counts from zero."""

    def __init__(self, server_pid: int, every: float = 0.5) -> None:
        from django.db import connection

        self.server_pid = server_pid
        self.database = str(connection.settings_dict["NAME"])
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.own_backend = int(cursor.fetchone()[0])
        self.every = every
        self.before: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pids(self) -> list[int]:
        return children(self.server_pid) + database_backends(self.database, self.own_backend)

    def _sample(self) -> None:
        self.last.update(cpu_by_process(self._pids()))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def start(self) -> None:
        self.before = cpu_by_process(self._pids())
        self.last = dict(self.before)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return sum(seconds - self.before.get(pid, 0.0) for pid, seconds in self.last.items())
