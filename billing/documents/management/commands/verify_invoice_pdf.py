"""Verify a PDF: signed by our certificate? unchanged since signing? which invoice?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from billing.documents import selectors, services
from billing.documents.exceptions import InvalidUpload
from billing.documents.verify import check_pdf_upload


class Command(BaseCommand):
    help = "Verify an invoice PDF's signature and match it against the stored documents."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, metavar="FILE")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"FILE: cannot read {path}: {exc.strerror}") from exc
        try:
            check_pdf_upload(data, max_bytes=settings.DOCUMENTS_MAX_UPLOAD_BYTES, field_name="FILE")
        except InvalidUpload as exc:
            raise CommandError(str(exc)) from exc
        try:
            result = selectors.verify_document(data)
        except InvalidUpload as exc:  # a decompression bomb
            raise CommandError(f"FILE: {exc.message}") from exc
        services.record_verification(
            sha256=result.inspection.sha256,
            outcome=result.outcome,
            by=SYSTEM,
            invoice=result.document.invoice if result.document else None,
        )
        for sentence in result.sentences:
            self.stdout.write(sentence)
        self.stdout.write(f"SHA-256 of the file: {result.inspection.sha256}")
        if not result.genuine:
            raise CommandError(f"NOT GENUINE ({result.outcome})")
        self.stdout.write(self.style.SUCCESS("GENUINE"))
