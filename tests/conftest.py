"""Suite-wide setup: the database banner, PostgreSQL-only tests, named people."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.backends.postgresql.operations import DatabaseOperations
from django.test import Client

from security.models import User
from tests.cluster import job_cluster  # noqa: F401 - a real django-q2 cluster for a test
from tests.mfa_helpers import give_totp_device, mark_client_verified

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


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """On PostgreSQL the connection handler also knows a ``vault`` alias, a test mirror of
    ``default``, used only by the tests that configure the vault role
    (tests/payments/vault_role.py); every other test reads the vault's table on default."""
    from tests.payments.vault_role import add_vault_mirror

    add_vault_mirror()


@pytest.fixture(autouse=True, scope="session")
def _flush_past_the_audit_trigger() -> Iterator[None]:
    """Let the suite's flush (transactional tests) empty the append-only audit tables.

    The audit trigger refuses TRUNCATE, which is what ``flush`` runs between
    ``django_db(transaction=True)`` tests. Only here, in tests, connected as a
    PostgreSQL superuser, the flush runs with ``session_replication_role =
    replica`` (ordinary triggers off, for that transaction only). Production's
    ``manage.py flush`` stays refused by the trigger.
    """
    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: Iterable[str]) -> None:
        original(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    DatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


def _newest_mtime(paths: Iterable[Path]) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


@pytest.fixture(autouse=True, scope="session")
def _built_artefacts() -> None:
    """The compiled translations and the collected static files, as scripts/run makes them.

    Templates name static files through WhiteNoise's manifest (a missing entry is an
    error) and Swedish pages read the compiled catalogue, so both must be current.
    scripts/test builds them before pytest starts; a bare ``pytest`` builds whatever is
    older than its sources, once, under a lock the parallel workers share.
    """
    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders
    from django.core.management import call_command

    static_root = Path(settings.STATIC_ROOT)
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    with (Path(settings.VAR_DIR) / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for po in Path(settings.LOCALE_PATHS[0]).glob("*/LC_MESSAGES/*.po"):
            mo = po.with_suffix(".mo")
            if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
                call_command(
                    "compilemessages",
                    locale=[po.parent.parent.name],
                    ignore_patterns=[".venv", "node_modules", "var"],
                    verbosity=0,
                )
        sources = [
            Path(storage.path(name))
            for finder in get_finders()
            for name, storage in finder.list(ignore_patterns=[])
        ]
        manifest = static_root / "staticfiles.json"
        if not manifest.exists() or manifest.stat().st_mtime < _newest_mtime(sources):
            call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _language_of_the_next_test() -> Iterator[None]:
    """Each test starts in the default language: a request's LocaleMiddleware leaves its
    choice active in the thread (harmless in a server, where every request chooses)."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture
def admin_client_for() -> Callable[[User], Client]:
    """Log a staff user into the admin; every admin test signs in through this one door.

    Returns a function: ``admin_client_for(user)`` gives a test client whose session
    is allowed into the admin: the user gets a confirmed TOTP device (when missing)
    and the session is marked as having verified it just now (so step-up is fresh).
    """

    def login(user: User) -> Client:
        client = Client()
        client.force_login(user)
        mark_client_verified(client, give_totp_device(user))
        return client

    return login


@pytest.fixture
def unverified_staff_client_for() -> Callable[[User], Client]:
    """A staff user signed in with a password only: the admin must refuse this session.

    ``unverified_staff_client_for(user)`` gives the user a confirmed TOTP device (so the
    session owes a verification, not an enrollment) and signs in without verifying it.
    """

    def login(user: User) -> Client:
        give_totp_device(user)
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture(scope="session")
def demo_keys() -> Iterator[Path]:
    """One GnuPG home and signing key file for the demo's tests (gpg makes a key once)."""
    import shutil
    import tempfile

    from billing.delivery import pgp

    home = Path(tempfile.mkdtemp(prefix="td", dir="/tmp"))  # gpg-agent's socket: short path
    home.chmod(0o700)
    try:
        yield home
    finally:
        pgp.kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def demo_settings(demo_keys: Path, settings: Any, tmp_path: Path) -> Iterator[None]:
    """``seed_demo`` with its keys outside var/: the session's GnuPG home and signing key,
    a throwaway vault keyring (the demo pays with cards too)."""
    from security.keyring import forget_cached_keyrings

    settings.DELIVERY_GNUPGHOME = demo_keys
    settings.DOCUMENTS_SIGNING_KEY_FILE = demo_keys / "invoice_signing.p12"
    settings.DOCUMENTS_CREATE_KEYS = True
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = tmp_path / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield
    forget_cached_keyrings()


# Named people and things (tests/factories.py): company, alice_company, bob_company,
# alice, bob, clerk, accountant, outsider, make_draft_invoice, make_open_invoice,
# default_series (for transactional tests).
from tests.factories import (  # noqa: E402, F401
    accountant,
    alice,
    alice_company,
    bob,
    bob_company,
    clerk,
    company,
    default_series,
    make_draft_invoice,
    make_open_invoice,
    outsider,
)
