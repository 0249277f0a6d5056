"""Suite-wide setup: the database banner, PostgreSQL-only tests, named people."""

from __future__ import annotations

import pytest
from django.db import connection

_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!!  NO POSTGRESQL: the suite ran on SQLite. Tests marked postgres_only\n"
    "!!  (triggers, row locks, concurrency) were SKIPPED. Set DATABASE_URL or start\n"
    "!!  PostgreSQL on 127.0.0.1:5432 for a full run.\n" + "!" * 78
)


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_report_header(config: pytest.Config) -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''} {db['NAME']}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _on_postgres():
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only: the suite is running on SQLite")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _on_postgres():
        terminalreporter.write_line(_BANNER, red=True, bold=True)


# Named people and things (tests/factories.py): company, alice_company, bob_company,
# alice, bob, clerk, accountant, outsider.
from tests.factories import (  # noqa: E402, F401
    accountant,
    alice,
    alice_company,
    bob,
    bob_company,
    clerk,
    company,
    outsider,
)
