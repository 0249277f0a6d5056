"""Check this (restored) database against a backup's manifest; one JSON line on stdout.

Run by the restore test in a separate process whose DATABASE_URL is the scratch database
and whose key settings are the restored keys; not meant for the live database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.backups.manifest import read_verified
from audit.restore_checks import run_all


class Command(BaseCommand):
    help = "Check a restored database against the manifest of its backup (used by restore_test)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", type=Path, help="the backup's manifest.json")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = read_verified(options["manifest"].parent)
        except Exception as exc:  # reported as a failed check by the caller
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(run_all(manifest)))
