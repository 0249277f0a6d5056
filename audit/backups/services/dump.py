"""The data backup: pg_dump and the media files through gpg, a signed manifest."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.utils import timezone

from audit import SYSTEM
from audit.backups import gpg, manifest, postgres, probes
from audit.backups.models import BackupRun
from audit.backups.services import runs
from audit.exceptions import BackupError


def _snapshot_facts(cursor: psycopg.Cursor[Any]) -> dict[str, Any]:
    """Row counts, the audit head and what each registered probe reads, in the dump's
    snapshot."""
    counts = postgres.row_counts(cursor)
    probed = {p.name: p.snapshot(cursor) for p in probes.probes() if p.snapshot is not None}
    cursor.execute("SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
    head = cursor.fetchone()
    cursor.execute("SHOW server_version")
    version = cursor.fetchone()
    return {
        "row_counts": counts,
        "probes": probed,
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


def create_backup(*, by: runs.Actor = SYSTEM, progress: runs.Progress = runs.quiet) -> BackupRun:
    """A consistent, encrypted, signed backup of the database and media files; audited.

    Refused before anything is written when the database is not PostgreSQL or no
    recipient key is usable (never a plaintext backup). A failure leaves no partial
    files, records the run as failed and raises a security alert."""
    postgres.require_postgresql()
    now = timezone.now()
    run = runs.new_run(BackupRun.Kind.DATA, now)
    try:
        recipients = gpg.check_recipients(
            settings.BACKUP_GPG_RECIPIENTS, setting="BACKUP_GPG_RECIPIENTS"
        )
        with runs.partial_folder(Path(run.path)) as folder:
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
                    database_entry = _dump_database(
                        snapshot, folder / runs.DATABASE_FILE, recipients
                    )
            progress(f"archiving {len(_media_files())} media files (encrypted)")
            media_entry, media_list = _archive_media(folder / runs.MEDIA_FILE, recipients)
            entries = [database_entry, media_entry]
            runs.seal_file_entries(folder, entries)
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
        runs.fail_run(run, str(exc), by=by)
        raise BackupError(str(exc)) from exc
    runs.finish_run(run, body, recipients, by=by)
    progress(f"backup {run.name}: {run.size_bytes} bytes in {run.path}")
    return run
