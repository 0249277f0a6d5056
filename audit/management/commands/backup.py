"""Back up the database and media files, encrypted to BACKUP_GPG_RECIPIENTS, signed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from audit.backups.services import apply_retention, create_backup
from audit.exceptions import BackupError


class Command(BaseCommand):
    help = (
        "Write an encrypted, signed backup (pg_dump custom format and the media files) under"
        " BACKUP_DIR. Fails, writing nothing, when no recipient key is usable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retention",
            action="store_true",
            help="afterwards delete the backups the retention policy no longer keeps",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = create_backup(by=SYSTEM, progress=self.stderr.write)
        except BackupError as exc:
            raise CommandError(f"backup failed: {exc}") from exc
        self.stdout.write(
            f"OK: backup {run.name}, {run.size_bytes:,} bytes, in {run.path}"
            f" (encrypted to {', '.join(run.recipients)}; manifest {run.manifest_sha256})"
        )
        if options["retention"]:
            deleted = apply_retention(by=SYSTEM, progress=self.stderr.write)
            self.stdout.write(f"retention: {len(deleted)} old backup(s) deleted")
