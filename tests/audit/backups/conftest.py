"""Backup tests: real GnuPG keys in a throw-away home, a scratch database per worker.

Two key pairs, as production has them: the data backup's recipient and, separately,
the key backup's. Both are protected by a passphrase, given to gpg as restore needs it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from audit.backups.gpg import generate_key
from billing.delivery import pgp
from security.keyring import forget_cached_keyrings

PASSPHRASE = "backup restore passphrase for tests"


@dataclass(frozen=True)
class BackupKeys:
    home: Path
    data: str
    keys: str


@pytest.fixture(scope="session")
def backup_gpg_keys() -> Iterator[BackupKeys]:
    home = Path(tempfile.mkdtemp(prefix="tb", dir="/tmp"))
    home.chmod(0o700)
    keys = BackupKeys(
        home,
        generate_key(
            home, name="Tillit backups", email="data@backups.example", passphrase=PASSPHRASE
        ),
        generate_key(home, name="Tillit keys", email="keys@backups.example", passphrase=PASSPHRASE),
    )
    pgp.kill_agent(home)  # a fresh agent: the passphrase must be given again
    yield keys
    pgp.kill_agent(home)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def backup_settings(settings: Any, tmp_path: Path, backup_gpg_keys: BackupKeys) -> Iterator[Any]:
    """Backups configured as in production, every file under this test's tmp_path."""
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_GNUPGHOME = backup_gpg_keys.home
    settings.BACKUP_GPG_RECIPIENTS = [backup_gpg_keys.data]
    settings.BACKUP_KEYS_GPG_RECIPIENTS = [backup_gpg_keys.keys]
    settings.BACKUP_GPG_PASSPHRASE = PASSPHRASE
    settings.BACKUP_RESTORE_TEST_DATABASE = f"{connection.settings_dict['NAME']}_scratch"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "audit_ed25519.pem"
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = []
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = tmp_path / "keys" / "vault_keyring.json"
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    settings.DOCUMENTS_SIGNING_KEY_FILE = tmp_path / "keys" / "invoice_signing.p12"
    settings.DOCUMENTS_KEY_PASSPHRASE = "correct horse invoice staple"
    settings.DOCUMENTS_CREATE_KEYS = False
    settings.DELIVERY_GNUPGHOME = tmp_path / "gnupg"
    forget_cached_keyrings()
    yield settings
    forget_cached_keyrings()


@pytest.fixture
def scratch_database(backup_settings: Any) -> Iterator[str]:
    """A database name on the test server, dropped after the test."""
    from audit.backups import postgres

    name = f"{connection.settings_dict['NAME']}_restored"
    postgres.drop_database(name)
    yield name
    postgres.drop_database(name)
