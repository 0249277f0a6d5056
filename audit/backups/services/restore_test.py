"""The restore test: the newest backup into a scratch database, checked by a second
process with the restored keys."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import SYSTEM, record
from audit.backups import gpg, manifest, postgres, probes
from audit.backups.models import BackupRun, RestoreTest
from audit.backups.services import restore, runs
from audit.exceptions import BackupError


def _keys_env(keys: Path | None) -> dict[str, str]:
    """The key settings of the process that checks the restored database."""
    env = {"VAULT_KEYRING_CREATE": "false", "DOCUMENTS_CREATE_KEYS": "false"}
    if keys is not None:
        trust = json.loads((keys / "trust.json").read_text())
        env.update(
            AUDIT_SIGNING_KEY_FILE=str(keys / "audit_ed25519.pem"),
            AUDIT_TRUSTED_PUBLIC_KEYS=",".join(trust["audit_trusted_public_keys"]),
            VAULT_KEYRING_PROVIDER="file",
            VAULT_KEYRING_FILE=str(keys / "vault_keyring.json"),
            DOCUMENTS_SIGNING_KEY_FILE=str(keys / "invoice_signing.p12"),
            DOCUMENTS_KEY_PASSPHRASE_FILE=str(keys / "documents_passphrase"),
            DELIVERY_GNUPGHOME=str(keys / "gnupg"),
        )
        return env
    env.update(
        AUDIT_SIGNING_KEY_FILE=str(settings.AUDIT_SIGNING_KEY_FILE),
        AUDIT_TRUSTED_PUBLIC_KEYS=",".join(settings.AUDIT_TRUSTED_PUBLIC_KEYS),
        VAULT_KEYRING_PROVIDER=settings.VAULT_KEYRING_PROVIDER,
        VAULT_KEYRING_FILE=str(settings.VAULT_KEYRING_FILE),
        VAULT_KEYRING_JSON=settings.VAULT_KEYRING_JSON,
        DOCUMENTS_SIGNING_KEY_FILE=str(settings.DOCUMENTS_SIGNING_KEY_FILE),
        DOCUMENTS_KEY_PASSPHRASE=settings.DOCUMENTS_KEY_PASSPHRASE,
        DELIVERY_GNUPGHOME=str(settings.DELIVERY_GNUPGHOME),
    )
    return env


def _check_restored(manifest_path: Path, database: str, keys: Path | None) -> list[dict[str, Any]]:
    """Run ``verify_restored_backup`` in a fresh process whose database is the scratch one and
    whose keys are the restored ones: what a recovered installation would see."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(_keys_env(keys))
    env.update(
        DATABASE_URL=postgres.database_url(database),
        DATABASE_CONN_MAX_AGE="0",
        DJANGO_SETTINGS_MODULE="config.settings",
        TILLIT_TESTING="false",
    )
    manage = Path(settings.BASE_DIR) / "manage.py"
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(manage), "verify_restored_backup", str(manifest_path)],
        capture_output=True,
        env=env,
        check=False,
        timeout=settings.Q_LONG_TIMEOUT,
    )
    try:
        checks = json.loads(result.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1][:500] if lines else f"exit status {result.returncode}"
        return [{"name": "checks of the restored database", "ok": False, "detail": detail}]
    return list(checks)


def _restored_keys(workdir: Path) -> tuple[Path | None, str]:
    """The newest key backup, decrypted into ``workdir``, when a key here can open it."""
    run = runs.latest_succeeded(BackupRun.Kind.KEYS)
    if run is None:
        return None, "live key files (no key backup yet)"
    if not set(run.recipients) & gpg.secret_keys():
        return None, f"live key files (key backup {run.name} cannot be opened on this machine)"
    target = workdir / "keys"
    restore.restore_keys(Path(run.path), target=target, by=SYSTEM)
    return target, f"key backup {run.name}"


def run_restore_test(
    *, by: runs.Actor = SYSTEM, progress: runs.Progress = runs.quiet
) -> RestoreTest:
    """Restore the newest backup into BACKUP_RESTORE_TEST_DATABASE and check it: signature
    and checksums, row counts per table, the audit chain with the restored keys, a sample
    of documents' hashes, stored cards decrypting. Records the result (audited); a failure
    raises a security alert."""
    postgres.require_postgresql()
    backup = runs.latest_succeeded(BackupRun.Kind.DATA)
    test = RestoreTest.objects.create(
        backup=backup, backup_name=backup.name if backup else "", started_at=timezone.now()
    )
    checks: list[dict[str, Any]] = []
    keys_source = ""
    scratch = settings.BACKUP_RESTORE_TEST_DATABASE
    error = ""
    try:
        if backup is None:
            raise BackupError("backup: there is no successful backup to test")
        with tempfile.TemporaryDirectory(prefix="tillit-restore-") as work:
            workdir = Path(work)
            progress(f"restoring {backup.name} into {scratch}")
            postgres.recreate_database(scratch)
            restore.restore_backup(
                Path(backup.path),
                database=scratch,
                media_root=workdir / "media",
                by=SYSTEM,
                progress=progress,
            )
            checks.append(
                {"name": "signature, checksums, restore", "ok": True, "detail": backup.name}
            )
            keys, keys_source = _restored_keys(workdir)
            progress(f"checking the restored database with the {keys_source}")
            checks += _check_restored(Path(backup.path) / manifest.MANIFEST, scratch, keys)
    except (BackupError, OSError, psycopg.Error, subprocess.SubprocessError) as exc:
        error = str(exc)[:1000]
        checks.append({"name": "restore", "ok": False, "detail": error})
    finally:
        with contextlib.suppress(BackupError, psycopg.Error):
            postgres.drop_database(scratch)
    passed = bool(checks) and all(check["ok"] for check in checks) and not error
    with transaction.atomic():
        locked = RestoreTest.objects.select_for_update().get(pk=test.pk)
        locked.finished_at = timezone.now()
        locked.passed = passed
        locked.checks = checks
        locked.keys_source = keys_source[:200]
        locked.error = error
        locked.save()
        record(
            "backup.restore_tested",
            actor=by,
            obj=locked,
            backup=locked.backup_name,
            passed=passed,
            failed_checks=[c["name"] for c in checks if not c["ok"]],
            keys_source=locked.keys_source,
        )
        if not passed:
            failed = next(c for c in checks if not c["ok"])
            probes.alert(
                kind=runs.RESTORE_TEST_FAILED_ALERT,
                summary="The backup restore test failed",
                detail=f"{locked.backup_name}: {failed['name']}: {failed['detail']}",
                by=by,
            )
    return locked
