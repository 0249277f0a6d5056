"""What every backup action shares: the run record, its folder, its manifest check."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import record
from audit.backups import gpg, manifest, probes
from audit.backups.models import BackupRun
from audit.exceptions import BackupError

Actor = Any  # security.actors.Actor: audit sits below security
Progress = Callable[[str], None]

DATABASE_FILE = "database.dump.gpg"
MEDIA_FILE = "media.tar.gpg"
KEYS_FILE = "keys.tar.gpg"
BACKUP_FAILED_ALERT = "backup.failed"
RESTORE_TEST_FAILED_ALERT = "backup.restore_test_failed"


def quiet(_: str) -> None:
    pass


def new_run(kind: str, now: datetime) -> BackupRun:
    name = f"{now:%Y%m%dT%H%M%S}.{now:%f}Z-{kind}"
    path = Path(settings.BACKUP_DIR) / name
    return BackupRun.objects.create(
        name=name, kind=kind, path=str(path), started_at=now, status=BackupRun.Status.RUNNING
    )


@contextlib.contextmanager
def partial_folder(final: Path) -> Iterator[Path]:
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


def finish_run(run: BackupRun, body: bytes, recipients: list[str], *, by: Actor) -> None:
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


def fail_run(run: BackupRun, error: str, *, by: Actor) -> None:
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
        probes.alert(
            kind=BACKUP_FAILED_ALERT,
            summary=f"The {locked.get_kind_display().lower()} backup failed",
            detail=locked.error,
            by=by,
        )
    run.refresh_from_db()


def latest_succeeded(kind: str) -> BackupRun | None:
    return (
        BackupRun.objects.filter(kind=kind, status=BackupRun.Status.SUCCEEDED)
        .order_by("-started_at", "-pk")
        .first()
    )


def checked_manifest(folder: Path, kind: str) -> dict[str, Any]:
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


def file_entry(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in data["files"] if entry["name"] == name)


def seal_file_entries(folder: Path, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        path = folder / entry["name"]
        entry["sha256"] = gpg.file_sha256(path)
        entry["size"] = path.stat().st_size
