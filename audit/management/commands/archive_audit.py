"""Export a closed period of the audit log for cold storage (nothing is deleted)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from audit.archive import period_bounds
from audit.exceptions import AuditError
from audit.services import archive_period


class Command(BaseCommand):
    help = (
        "Export a closed period (UTC) as JSON Lines with its signed checkpoint and a SHA-256 "
        "manifest, verify the export, and record audit.archived. Deletes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--period", metavar="YYYY-MM", help="one calendar month (UTC)")
        which.add_argument(
            "--before", metavar="YYYY-MM-DD", help="every event before this day (UTC)"
        )
        parser.add_argument("--out", type=Path, required=True, metavar="DIR")

    def handle(self, *args: Any, **options: Any) -> None:
        start: datetime | None
        if options["period"]:
            try:
                start, end = period_bounds(options["period"])
            except ValueError as exc:
                raise CommandError(f"--period: {exc}") from exc
            name = f"audit-{options['period']}"
        else:
            try:
                day = datetime.strptime(options["before"], "%Y-%m-%d")
            except ValueError as exc:
                raise CommandError(f"--before: {options['before']!r} is not YYYY-MM-DD") from exc
            start, end = None, day.replace(tzinfo=UTC)
            name = f"audit-before-{options['before']}"
        out: Path = options["out"]
        if not out.is_dir():
            raise CommandError(f"--out: {out} is not a directory")
        try:
            result = archive_period(
                start=start,
                end=end,
                out_dir=out,
                name=name,
                by=SYSTEM,
                progress=lambda count: self.stderr.write(f"… {count:,} events written"),
            )
        except AuditError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Archived #{result.first_seq}…#{result.last_seq} ({result.events:,} events) to "
            f"{result.directory}, anchored by the checkpoint at #{result.checkpoint_seq}; "
            f"verified. SHA256SUMS {result.manifest_sha256}. Nothing was deleted."
        )
