"""Throttles count across processes: two other processes (as two gunicorn workers would)
hit one counter at the same time, and this process sees every hit (none lost, none
counted per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from db.counters import count_hits
from security.models import ApiRateCounter

ROOT = Path(__file__).resolve().parents[2]
HITS = 40
_WORKER = f"""
import django
django.setup()
from db.counters import count_hits
from security.models import ApiRateCounter
for _ in range({HITS}):
    count_hits(ApiRateCounter._meta.db_table, [("client:shared", 1000)])
"""


@pytest.mark.django_db(transaction=True)
def test_two_processes_share_one_count_and_lose_no_hit() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the test suite runs on PostgreSQL")
    settings_dict = connection.settings_dict
    url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
        f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER], cwd=ROOT, env=env)  # noqa: S603
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    table = ApiRateCounter._meta.db_table
    assert count_hits(table, [("client:shared", 1000)]) == {"client:shared": 2 * HITS + 1}
    # A new window starts the count again; another key has its own.
    assert count_hits(table, [("client:shared", 1060), ("user:7", 1060)]) == {
        "client:shared": 1,
        "user:7": 1,
    }
