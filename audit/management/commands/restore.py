"""Restore a backup: check its signature and checksums, then decrypt into a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from audit.backups.services import restore_backup, restore_keys
from audit.exceptions import BackupError


class Command(BaseCommand):
    help = (
        "Restore the backup in FOLDER into --database (on the configured server; created"
        " when missing). Refuses a non-empty database without --replace. With --keys,"
        " FOLDER is a key backup, unpacked into --keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path, help="a backup folder under BACKUP_DIR")
        parser.add_argument("--database", help="the database to restore into")
        parser.add_argument(
            "--replace", action="store_true", help="drop what the database holds first"
        )
        parser.add_argument("--media-root", type=Path, help="also restore the media files here")
        parser.add_argument(
            "--replace-media", action="store_true", help="overwrite a non-empty --media-root"
        )
        parser.add_argument(
            "--keys", type=Path, metavar="DIR", help="FOLDER is a key backup: unpack it into DIR"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"folder: {folder} is not a directory")
        try:
            if options["keys"] is not None:
                names = restore_keys(folder, target=options["keys"], by=SYSTEM)
                self.stdout.write(f"OK: {len(names)} key items restored into {options['keys']}")
                return
            if not options["database"]:
                raise CommandError("--database: name the database to restore into")
            data = restore_backup(
                folder,
                database=options["database"],
                replace=options["replace"],
                media_root=options["media_root"],
                replace_media=options["replace_media"],
                by=SYSTEM,
                progress=self.stderr.write,
            )
        except BackupError as exc:
            raise CommandError(f"restore refused: {exc}") from exc
        total = sum(data["row_counts"].values())
        self.stdout.write(
            f"OK: {data['name']} restored into {options['database']}: "
            f"{len(data['row_counts'])} tables, {total:,} rows"
        )
