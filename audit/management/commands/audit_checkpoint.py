"""Sign the audit chain's head now; optionally export the checkpoint for an auditor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from audit.exceptions import AuditError
from audit.selectors import checkpoint_document
from audit.services import create_checkpoint


class Command(BaseCommand):
    help = "Create a signed checkpoint of the audit chain's head (and export it with --export)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--export",
            type=Path,
            metavar="FILE",
            help="also write the checkpoint and public key as JSON to FILE (not overwritten)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        export: Path | None = options["export"]
        if export is not None and export.exists():
            raise CommandError(f"--export: {export} already exists; choose a new file")
        try:
            checkpoint = create_checkpoint(by=SYSTEM)
        except AuditError as exc:
            raise CommandError(str(exc)) from exc
        assert checkpoint is not None  # only the schedule's variant may skip
        self.stdout.write(
            f"Checkpoint at #{checkpoint.seq}: hash {checkpoint.head_hash}, "
            f"key {checkpoint.key_id[:16]}…"
        )
        if export is not None:
            document = checkpoint_document(checkpoint)
            export.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            self.stdout.write(f"Exported to {export}: keep it somewhere the database is not.")
