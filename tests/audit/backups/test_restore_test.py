"""The automatic restore test: the newest backup restored into a scratch database and
checked there, in its own process, with the restored keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.backups import postgres
from audit.backups.models import BackupRun, RestoreTest
from audit.backups.selectors import latest_backup_runs, latest_restore_test
from audit.backups.services import create_backup, export_keys, run_restore_test
from audit.exceptions import BackupError
from security.models import SecurityAlert
from tests.audit.backups.test_backup_restore import some_data  # noqa: F401 - fixture
from tests.factories import audit_events

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _by_name(test: RestoreTest) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in test.checks}


def test_restore_test_passes_with_the_restored_keys(
    some_data: dict[str, Any],  # noqa: F811
    backup_settings: Any,
) -> None:
    keys = export_keys()
    backup = create_backup()

    test = run_restore_test()

    assert test.passed, test.checks
    assert test.keys_source == f"key backup {keys.name}"
    checks = _by_name(test)
    assert set(checks) == {
        "signature, checksums, restore",
        "row counts per table",
        "audit chain",
        "documents' hashes",
        "signing key",
        "stored cards decrypt",
    }
    assert "1 checkpoints with trusted keys" in checks["audit chain"]["detail"]
    assert checks["stored cards decrypt"]["detail"].startswith("1 data key(s)")
    assert checks["documents' hashes"]["detail"] == "1 sampled"
    [event] = audit_events("backup.restore_tested", test)
    assert event.details["passed"] is True
    assert not postgres.database_exists(backup_settings.BACKUP_RESTORE_TEST_DATABASE)
    assert latest_restore_test() == test
    assert list(latest_backup_runs()) == [backup, keys]
    assert not SecurityAlert.objects.filter(kind="backup.restore_test_failed").exists()


def test_a_restore_without_the_original_keys_fails_and_alerts(
    some_data: dict[str, Any],  # noqa: F811
    backup_settings: Any,
    tmp_path: Path,
) -> None:
    """No key backup, and the live vault keyring replaced by a new one: the restored
    database's stored card cannot be opened, so the test fails and raises an alert."""
    backup = create_backup()
    # The backup's manifest must still verify: keep its key trusted, as a retired key.
    from audit.keys import current_public_key

    old = current_public_key()
    assert old is not None
    backup_settings.AUDIT_TRUSTED_PUBLIC_KEYS = []
    backup_settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "new-keys" / "audit_ed25519.pem"
    backup_settings.VAULT_KEYRING_FILE = tmp_path / "new-keys" / "vault_keyring.json"
    from audit.keys import create_key_file

    create_key_file()
    # Trusted for reading the manifest in this process only: the checking process gets the
    # live key settings, whose trust list is written to its environment below.
    backup_settings.AUDIT_TRUSTED_PUBLIC_KEYS = [old.public_key_hex]
    Path(backup_settings.VAULT_KEYRING_FILE).write_text("{}")

    test = run_restore_test()

    assert test.passed is False
    assert test.backup == backup
    checks = _by_name(test)
    assert checks["stored cards decrypt"]["ok"] is False
    alert = SecurityAlert.objects.get(kind="backup.restore_test_failed")
    assert alert.is_open
    assert audit_events("backup.restore_tested", test)[0].details["passed"] is False


def test_restore_test_without_a_backup_fails_and_is_recorded(backup_settings: Any) -> None:
    with pytest.raises(CommandError, match="FAILED"):
        call_command("restore_test")
    test = RestoreTest.objects.get()
    assert test.passed is False
    assert "no successful backup" in test.error
    assert SecurityAlert.objects.get(kind="backup.restore_test_failed").is_open


def test_key_backup_is_refused_without_its_own_recipients(backup_settings: Any) -> None:
    backup_settings.BACKUP_KEYS_GPG_RECIPIENTS = []
    with pytest.raises(BackupError, match="BACKUP_KEYS_GPG_RECIPIENTS: no recipient key"):
        export_keys()
    assert BackupRun.objects.get().status == BackupRun.Status.FAILED
    assert not any(p.is_file() for p in Path(backup_settings.BACKUP_DIR).rglob("*"))


def test_key_backup_holds_the_keys_and_not_the_data(
    some_data: dict[str, Any],  # noqa: F811
    backup_settings: Any,
    tmp_path: Path,
) -> None:
    run = export_keys()
    target = tmp_path / "restored-keys"
    call_command("restore", run.path, keys=target)
    restored = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert {
        "audit_ed25519.pem",
        "trust.json",
        "invoice_signing.p12",
        "vault_keyring.json",
        "documents_passphrase",
        "secret_key",
    } <= set(restored)
    assert (target / "audit_ed25519.pem").read_bytes() == Path(
        backup_settings.AUDIT_SIGNING_KEY_FILE
    ).read_bytes()
    assert not any(name.endswith(".dump") for name in restored)
    assert (target / "vault_keyring.json").stat().st_mode & 0o077 == 0
