"""Restores: a data backup into a database (and media files), a key backup into a folder."""

from __future__ import annotations

import contextlib
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings

from audit import record
from audit.backups import gpg, postgres
from audit.backups.models import BackupRun
from audit.backups.services import runs
from audit.exceptions import BackupError


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
    entry = runs.file_entry(data, runs.MEDIA_FILE)
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
    by: runs.Actor,
    progress: runs.Progress = runs.quiet,
) -> dict[str, Any]:
    """Check the manifest's signature and every checksum, then restore the database into
    ``database`` (created if missing; refused when not empty unless ``replace``) and,
    given ``media_root``, the media files; audited. Returns the manifest."""
    postgres.require_postgresql()
    folder = Path(folder)
    progress(f"checking {folder.name}: signature and checksums")
    data = runs.checked_manifest(folder, BackupRun.Kind.DATA)
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
    _pg_restore(folder, runs.file_entry(data, runs.DATABASE_FILE), database)
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


def restore_keys(folder: Path, *, target: Path, by: runs.Actor) -> list[str]:
    """Check and decrypt a key backup into ``target`` (created, mode 0700); the names restored."""
    data = runs.checked_manifest(Path(folder), BackupRun.Kind.KEYS)
    entry = runs.file_entry(data, runs.KEYS_FILE)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as plain:
        digest = gpg.decrypt_to(
            Path(folder) / runs.KEYS_FILE, plain.write, passphrase=settings.BACKUP_GPG_PASSPHRASE
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
