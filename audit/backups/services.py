"""Backups, restores, restore tests, key exports and retention: every write of the package.

Each function records what it did in the audit log; a backup or restore test that fails
also raises a security alert (the admin banner and an email to the security officers).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import SYSTEM, record
from audit.backups import gpg, manifest, postgres
from audit.backups.models import BackupRun, RestoreTest
from audit.backups.retention import RetentionPolicy, backups_to_keep
from audit.exceptions import BackupError

Actor = Any
Progress = Callable[[str], None]

DATABASE_FILE = "database.dump.gpg"
MEDIA_FILE = "media.tar.gpg"
KEYS_FILE = "keys.tar.gpg"
DOCUMENT_SAMPLE = 20
BACKUP_FAILED_ALERT = "backup.failed"
RESTORE_TEST_FAILED_ALERT = "backup.restore_test_failed"


def _quiet(_: str) -> None:
    pass


def _new_run(kind: str, now: datetime) -> BackupRun:
    name = f"{now:%Y%m%dT%H%M%S}.{now:%f}Z-{kind}"
    path = Path(settings.BACKUP_DIR) / name
    return BackupRun.objects.create(
        name=name, kind=kind, path=str(path), started_at=now, status=BackupRun.Status.RUNNING
    )


@contextlib.contextmanager
def _partial_folder(final: Path) -> Iterator[Path]:
    """A private folder that becomes ``final`` only when everything in it was written."""
    partial = final.with_name(final.name + ".partial")
    partial.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial.mkdir(mode=0o700)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(final)


def _finish_run(run: BackupRun, body: bytes, recipients: list[str], *, by: Actor) -> None:
    folder = Path(run.path)
    size = sum(p.stat().st_size for p in folder.iterdir())
    with transaction.atomic():
        locked = BackupRun.objects.select_for_update().get(pk=run.pk)
        locked.status = BackupRun.Status.SUCCEEDED
        locked.finished_at = timezone.now()
        locked.size_bytes = size
        locked.manifest_sha256 = manifest.sha256_hex(body)
        locked.recipients = recipients
        locked.save()
        record(
            "backup.created",
            actor=by,
            obj=locked,
            name=locked.name,
            kind=locked.kind,
            size_bytes=size,
            manifest_sha256=locked.manifest_sha256,
            recipients=recipients,
        )
    run.refresh_from_db()


def _fail_run(run: BackupRun, error: str, *, by: Actor) -> None:
    from security.services import raise_security_alert

    with transaction.atomic():
        locked = BackupRun.objects.select_for_update().get(pk=run.pk)
        locked.status = BackupRun.Status.FAILED
        locked.finished_at = timezone.now()
        locked.error = error[:1000]
        locked.save()
        record(
            "backup.failed",
            actor=by,
            obj=locked,
            name=locked.name,
            kind=locked.kind,
            error=locked.error,
        )
        raise_security_alert(
            kind=BACKUP_FAILED_ALERT,
            summary=f"The {locked.get_kind_display().lower()} backup failed",
            detail=locked.error,
            by=by,
        )
    run.refresh_from_db()


# Data backups ---------------------------------------------------------------------------


def _snapshot_facts(cursor: psycopg.Cursor[Any]) -> dict[str, Any]:
    """Row counts, a sample of documents' hashes and the audit head, in the dump's snapshot."""
    from billing.documents.models import InvoiceDocument

    counts = postgres.row_counts(cursor)
    documents: list[dict[str, Any]] = []
    table = InvoiceDocument._meta.db_table
    if table in counts:
        cursor.execute(
            psycopg.sql.SQL("SELECT id, sha256 FROM {} ORDER BY random() LIMIT %s").format(
                psycopg.sql.Identifier(table)
            ),
            [DOCUMENT_SAMPLE],
        )
        documents = [{"id": row[0], "sha256": row[1]} for row in cursor.fetchall()]
    cursor.execute("SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
    head = cursor.fetchone()
    cursor.execute("SHOW server_version")
    version = cursor.fetchone()
    return {
        "row_counts": counts,
        "documents": documents,
        "audit_head": {"seq": head[0], "hash": head[1]} if head else {"seq": 0, "hash": ""},
        "server_version": version[0] if version else "",
    }


def _dump_database(snapshot: str, output: Path, recipients: list[str]) -> dict[str, Any]:
    """pg_dump (custom format, in ``snapshot``) streamed through gpg into ``output``."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - fixed program, our own arguments
            [
                postgres.program("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-password",
                f"--dbname={postgres.live_database_name()}",
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=postgres.client_env(),
        )
        assert process.stdout is not None
        try:
            digest = gpg.encrypt_stream(process.stdout, output, recipients)
        finally:
            returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise BackupError(f"pg_dump failed: {message[-1] if message else returncode}")
    return {
        "name": output.name,
        "content": "pg_dump custom format",
        "plain_sha256": digest.sha256,
        "plain_size": digest.size,
    }


def _media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _archive_media(output: Path, recipients: list[str]) -> tuple[dict[str, Any], list[Any]]:
    """The media files (uploaded logos) as a tar, encrypted; the file entry and file list."""
    root = Path(settings.MEDIA_ROOT)
    listed = []
    with (
        gpg.encrypting_writer(output, recipients) as writer,
        tarfile.open(fileobj=writer, mode="w|gz") as archive,  # type: ignore[call-overload]
    ):
        for path in _media_files():
            relative = path.relative_to(root).as_posix()
            archive.add(path, arcname=relative, recursive=False)
            listed.append({"path": relative, "sha256": gpg.file_sha256(path)})
    digest = writer.digest()
    entry = {
        "name": output.name,
        "content": "tar.gz of MEDIA_ROOT",
        "plain_sha256": digest.sha256,
        "plain_size": digest.size,
    }
    return entry, listed


def _seal_file_entries(folder: Path, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        path = folder / entry["name"]
        entry["sha256"] = gpg.file_sha256(path)
        entry["size"] = path.stat().st_size


def create_backup(*, by: Actor = SYSTEM, progress: Progress = _quiet) -> BackupRun:
    """A consistent, encrypted, signed backup of the database and media files; audited.

    Refused before anything is written when the database is not PostgreSQL or no
    recipient key is usable (never a plaintext backup). A failure leaves no partial
    files, records the run as failed and raises a security alert."""
    postgres.require_postgresql()
    now = timezone.now()
    run = _new_run(BackupRun.Kind.DATA, now)
    try:
        recipients = gpg.check_recipients(
            settings.BACKUP_GPG_RECIPIENTS, setting="BACKUP_GPG_RECIPIENTS"
        )
        with _partial_folder(Path(run.path)) as folder:
            with postgres.connect(autocommit=False) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                with conn.cursor() as cursor:
                    cursor.execute("SELECT pg_export_snapshot()")
                    row = cursor.fetchone()
                    assert row is not None
                    snapshot = str(row[0])
                    progress("counting rows in the backup's snapshot")
                    facts = _snapshot_facts(cursor)
                    progress(f"dumping {len(facts['row_counts'])} tables (pg_dump, encrypted)")
                    database_entry = _dump_database(snapshot, folder / DATABASE_FILE, recipients)
            progress(f"archiving {len(_media_files())} media files (encrypted)")
            media_entry, media_list = _archive_media(folder / MEDIA_FILE, recipients)
            entries = [database_entry, media_entry]
            _seal_file_entries(folder, entries)
            body = manifest.write_signed(
                folder,
                {
                    "kind": BackupRun.Kind.DATA,
                    "name": run.name,
                    "created_at": now.isoformat(),
                    "database": postgres.live_database_name(),
                    "recipients": recipients,
                    "files": entries,
                    "media": media_list,
                    **facts,
                },
            )
    except (BackupError, OSError, psycopg.Error) as exc:
        _fail_run(run, str(exc), by=by)
        raise BackupError(str(exc)) from exc
    _finish_run(run, body, recipients, by=by)
    progress(f"backup {run.name}: {run.size_bytes} bytes in {run.path}")
    return run


# Restores -------------------------------------------------------------------------------


def _checked_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """The verified manifest, once every file's SHA-256 matches it (a changed byte refuses)."""
    data = manifest.read_verified(folder)
    if data.get("kind") != kind:
        raise BackupError(f"backup: {folder.name} is a {data.get('kind')} backup, not {kind}")
    for entry in data["files"]:
        path = folder / entry["name"]
        if not path.is_file():
            raise BackupError(f"backup: {entry['name']} is missing from {folder}")
        if path.stat().st_size != entry["size"] or gpg.file_sha256(path) != entry["sha256"]:
            raise BackupError(
                f"backup: {entry['name']} does not match its checksum in the manifest"
                " (changed or damaged); refused"
            )
    return data


def _file_entry(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in data["files"] if entry["name"] == name)


def _pg_restore(folder: Path, entry: dict[str, Any], database: str) -> None:
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603
            [
                postgres.program("pg_restore"),
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                "--single-transaction",
                "--no-password",
                f"--dbname={database}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=postgres.client_env(),
        )
        assert process.stdin is not None
        try:
            digest = gpg.decrypt_to(
                folder / entry["name"],
                process.stdin.write,
                passphrase=settings.BACKUP_GPG_PASSPHRASE,
            )
        except BrokenPipeError:
            digest = None  # pg_restore stopped early: its own message says why
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise BackupError(f"pg_restore failed: {lines[-1] if lines else returncode}")
    if digest is None or digest.sha256 != entry["plain_sha256"]:
        postgres.empty_public_schema(database)
        raise BackupError("backup: the decrypted dump does not match its checksum; refused")


def _restore_media(folder: Path, data: dict[str, Any], target: Path, *, replace: bool) -> int:
    """Unpack the media archive into ``target`` and check every file against the manifest."""
    if target.exists() and any(target.iterdir()) and not replace:
        raise BackupError(f"media_root: {target} is not empty; pass --replace-media to overwrite")
    entry = _file_entry(data, MEDIA_FILE)
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as plain:
        digest = gpg.decrypt_to(
            folder / entry["name"], plain.write, passphrase=settings.BACKUP_GPG_PASSPHRASE
        )
        if digest.sha256 != entry["plain_sha256"]:
            raise BackupError("backup: the decrypted media archive does not match its checksum")
        plain.seek(0)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=plain, mode="r:gz") as archive:
            archive.extractall(target, filter="data")
    for item in data["media"]:
        path = target / item["path"]
        if not path.is_file() or gpg.file_sha256(path) != item["sha256"]:
            raise BackupError(f"backup: media file {item['path']} does not match the manifest")
    return len(data["media"])


def _prepare_target(database: str, *, replace: bool) -> None:
    if not postgres.database_exists(database):
        with postgres.connect("postgres") as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database))
            )
        return
    if postgres.is_empty(database):
        return
    if not replace:
        raise BackupError(
            f"database: {database} is not empty; pass --replace to drop what it holds first"
        )
    postgres.empty_public_schema(database)


def restore_backup(
    folder: Path,
    *,
    database: str,
    replace: bool = False,
    media_root: Path | None = None,
    replace_media: bool = False,
    by: Actor,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Check the manifest's signature and every checksum, then restore the database into
    ``database`` (created if missing; refused when not empty unless ``replace``) and,
    given ``media_root``, the media files; audited. Returns the manifest."""
    postgres.require_postgresql()
    folder = Path(folder)
    progress(f"checking {folder.name}: signature and checksums")
    data = _checked_manifest(folder, BackupRun.Kind.DATA)
    if (
        media_root is not None
        and media_root.exists()
        and any(media_root.iterdir())
        and not replace_media
    ):
        raise BackupError(
            f"media_root: {media_root} is not empty; pass --replace-media to overwrite"
        )
    _prepare_target(database, replace=replace)
    progress(f"restoring the database into {database} (pg_restore)")
    _pg_restore(folder, _file_entry(data, DATABASE_FILE), database)
    restored_media = 0
    if media_root is not None:
        progress(f"restoring the media files into {media_root}")
        restored_media = _restore_media(folder, data, media_root, replace=replace_media)
    record(
        "backup.restored",
        actor=by,
        backup=data["name"],
        database=database,
        tables=len(data["row_counts"]),
        media_files=restored_media,
    )
    return data


# Key material ---------------------------------------------------------------------------


def _key_sources() -> list[tuple[str, Path | bytes]]:
    """What a restore needs besides the data: (name in the archive, file or bytes)."""
    sources: list[tuple[str, Path | bytes]] = []
    audit_key = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if audit_key.exists():
        sources.append(("audit_ed25519.pem", audit_key))
    trust = {"audit_trusted_public_keys": list(settings.AUDIT_TRUSTED_PUBLIC_KEYS)}
    sources.append(("trust.json", json.dumps(trust, indent=2).encode()))
    signing = Path(settings.DOCUMENTS_SIGNING_KEY_FILE)
    if signing.exists():
        sources.append(("invoice_signing.p12", signing))
    if settings.DOCUMENTS_KEY_PASSPHRASE:
        sources.append(("documents_passphrase", settings.DOCUMENTS_KEY_PASSPHRASE.encode()))
    if settings.VAULT_KEYRING_PROVIDER == "env":
        sources.append(("vault_keyring.json", settings.VAULT_KEYRING_JSON.encode()))
    elif Path(settings.VAULT_KEYRING_FILE).exists():
        sources.append(("vault_keyring.json", Path(settings.VAULT_KEYRING_FILE)))
    sources.append(("secret_key", str(settings.SECRET_KEY).encode()))
    if settings.PRIVACY_PSEUDONYM_KEY:
        sources.append(("privacy_pseudonym_key", settings.PRIVACY_PSEUDONYM_KEY.encode()))
    gnupg_home = Path(settings.DELIVERY_GNUPGHOME)
    if gnupg_home.is_dir():
        for path in sorted(gnupg_home.rglob("*")):
            # Sockets and lock files belong to a running agent, not to the keys.
            if path.is_file() and not path.name.startswith("S.") and ".lock" not in path.name:
                sources.append((f"gnupg/{path.relative_to(gnupg_home).as_posix()}", path))
    return sources


def export_keys(*, by: Actor = SYSTEM, progress: Progress = _quiet) -> BackupRun:
    """The key material (audit key and trust list, signing key and passphrase, vault
    keyring, PGP home, SECRET_KEY and the pseudonym key) in its own encrypted file, to
    BACKUP_KEYS_GPG_RECIPIENTS (never the data backup's recipients, never in the data
    backup's file); signed, audited."""
    now = timezone.now()
    run = _new_run(BackupRun.Kind.KEYS, now)
    try:
        recipients = gpg.check_recipients(
            settings.BACKUP_KEYS_GPG_RECIPIENTS, setting="BACKUP_KEYS_GPG_RECIPIENTS"
        )
        sources = _key_sources()
        with _partial_folder(Path(run.path)) as folder:
            with (
                gpg.encrypting_writer(folder / KEYS_FILE, recipients) as writer,
                tarfile.open(fileobj=writer, mode="w|gz") as archive,  # type: ignore[call-overload]
            ):
                for name, source in sources:
                    content = source.read_bytes() if isinstance(source, Path) else source
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(content), 0o600, int(now.timestamp())
                    archive.addfile(info, io.BytesIO(content))
            digest = writer.digest()
            entries = [
                {
                    "name": KEYS_FILE,
                    "content": "tar.gz of key files",
                    "plain_sha256": digest.sha256,
                    "plain_size": digest.size,
                }
            ]
            _seal_file_entries(folder, entries)
            body = manifest.write_signed(
                folder,
                {
                    "kind": BackupRun.Kind.KEYS,
                    "name": run.name,
                    "created_at": now.isoformat(),
                    "recipients": recipients,
                    "files": entries,
                    "contains": [name for name, _ in sources],
                },
            )
    except (BackupError, OSError) as exc:
        _fail_run(run, str(exc), by=by)
        raise BackupError(str(exc)) from exc
    _finish_run(run, body, recipients, by=by)
    progress(f"key backup {run.name}: {len(sources)} items in {run.path}")
    return run


def restore_keys(folder: Path, *, target: Path, by: Actor) -> list[str]:
    """Check and decrypt a key backup into ``target`` (created, mode 0700); the names restored."""
    data = _checked_manifest(Path(folder), BackupRun.Kind.KEYS)
    entry = _file_entry(data, KEYS_FILE)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as plain:
        digest = gpg.decrypt_to(
            Path(folder) / KEYS_FILE, plain.write, passphrase=settings.BACKUP_GPG_PASSPHRASE
        )
        if digest.sha256 != entry["plain_sha256"]:
            raise BackupError("backup: the decrypted key archive does not match its checksum")
        plain.seek(0)
        with tarfile.open(fileobj=plain, mode="r:gz") as archive:
            archive.extractall(target, filter="data")
    for path in target.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    record("backup.keys_restored", actor=by, backup=data["name"], items=data["contains"])
    return list(data["contains"])


# Restore tests --------------------------------------------------------------------------


def _latest_succeeded(kind: str) -> BackupRun | None:
    return (
        BackupRun.objects.filter(kind=kind, status=BackupRun.Status.SUCCEEDED)
        .order_by("-started_at", "-pk")
        .first()
    )


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
    run = _latest_succeeded(BackupRun.Kind.KEYS)
    if run is None:
        return None, "live key files (no key backup yet)"
    if not set(run.recipients) & gpg.secret_keys():
        return None, f"live key files (key backup {run.name} cannot be opened on this machine)"
    target = workdir / "keys"
    restore_keys(Path(run.path), target=target, by=SYSTEM)
    return target, f"key backup {run.name}"


def run_restore_test(*, by: Actor = SYSTEM, progress: Progress = _quiet) -> RestoreTest:
    """Restore the newest backup into BACKUP_RESTORE_TEST_DATABASE and check it: signature
    and checksums, row counts per table, the audit chain with the restored keys, a sample
    of documents' hashes, stored cards decrypting. Records the result (audited); a failure
    raises a security alert."""
    from security.services import raise_security_alert

    postgres.require_postgresql()
    backup = _latest_succeeded(BackupRun.Kind.DATA)
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
            restore_backup(
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
            raise_security_alert(
                kind=RESTORE_TEST_FAILED_ALERT,
                summary="The backup restore test failed",
                detail=f"{locked.backup_name}: {failed['name']}: {failed['detail']}",
                by=by,
            )
    return locked


# Retention ------------------------------------------------------------------------------


def retention_policy() -> RetentionPolicy:
    return RetentionPolicy(
        daily=settings.BACKUP_KEEP_DAILY,
        weekly=settings.BACKUP_KEEP_WEEKLY,
        monthly=settings.BACKUP_KEEP_MONTHLY,
    )


def _newest_good(kind: str) -> set[int]:
    """The newest succeeded backup and the newest one a restore test passed: never deleted."""
    keep: set[int] = set()
    newest = _latest_succeeded(kind)
    if newest is not None:
        keep.add(newest.pk)
    tested = (
        RestoreTest.objects.filter(
            passed=True, backup__status=BackupRun.Status.SUCCEEDED, backup__kind=kind
        )
        .order_by("-started_at")
        .values_list("backup_id", flat=True)
        .first()
    )
    if tested is not None:
        keep.add(tested)
    return keep


def apply_retention(*, by: Actor = SYSTEM, progress: Progress = _quiet) -> list[BackupRun]:
    """Delete the backups the policy no longer keeps (files and all); the newest good backup
    of each kind always stays. Audited per deleted backup. Returns what was deleted."""
    policy = retention_policy()
    deleted: list[BackupRun] = []
    for kind in BackupRun.Kind.values:
        runs = list(
            BackupRun.objects.filter(kind=kind, status=BackupRun.Status.SUCCEEDED).values_list(
                "pk", "started_at"
            )
        )
        keep = backups_to_keep(runs, policy=policy) | _newest_good(kind)
        for pk, _started in runs:
            if pk in keep:
                continue
            with transaction.atomic():
                run = BackupRun.objects.select_for_update().get(pk=pk)
                if run.status != BackupRun.Status.SUCCEEDED:
                    continue
                shutil.rmtree(run.path, ignore_errors=True)
                run.status = BackupRun.Status.DELETED
                run.deleted_at = timezone.now()
                run.save(update_fields=["status", "deleted_at"])
                record("backup.deleted", actor=by, obj=run, name=run.name, kind=run.kind)
            progress(f"deleted {run.name}")
            deleted.append(run)
    return deleted


# Schedules ------------------------------------------------------------------------------


def register_backup_schedules() -> None:
    """The daily backup (then retention) and the daily restore test (django-q2)."""
    from django_q.models import Schedule

    from audit.schedules import ensure_schedule

    ensure_schedule(
        "audit.backup",
        func="audit.backups.tasks.scheduled_backup",
        schedule_type=Schedule.MINUTES,
        minutes=settings.BACKUP_SCHEDULE_MINUTES,
        timeout=settings.Q_LONG_TIMEOUT,
    )
    ensure_schedule(
        "audit.restore_test",
        func="audit.backups.tasks.scheduled_restore_test",
        schedule_type=Schedule.MINUTES,
        minutes=settings.BACKUP_RESTORE_TEST_MINUTES,
        timeout=settings.Q_LONG_TIMEOUT,
    )
