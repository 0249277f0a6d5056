"""Write a period's signed invoices and credit notes as a ZIP with a signed manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from billing.documents import services
from billing.documents.exceptions import DocumentError


class Command(BaseCommand):
    help = (
        "Export the signed PDFs issued from --start to --end (inclusive) as a ZIP; invoices"
        " of the period without a PDF are signed first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--end", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--output", type=Path, metavar="FILE", help="default: ./<name>.zip")

    def handle(self, *args: Any, **options: Any) -> None:
        period = {"start": options["start"], "end": options["end"]}
        try:
            # No request to keep short here: sign what is missing, then export.
            signed = services.sign_period_documents(**period, by=SYSTEM)
            if signed:
                self.stdout.write(f"{signed} invoices without a PDF signed first")
            bundle = services.export_period(**period, by=SYSTEM)
        except DocumentError as exc:
            raise CommandError(str(exc)) from exc
        output: Path = options["output"] or Path(bundle.filename)
        try:
            output.write_bytes(bundle.content)
        except OSError as exc:
            raise CommandError(f"--output: cannot write {output}: {exc.strerror}") from exc
        self.stdout.write(f"{bundle.count} documents written to {output}")
        self.stdout.write(f"manifest.json SHA-256: {bundle.manifest_sha256}")
