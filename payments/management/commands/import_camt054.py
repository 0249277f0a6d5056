"""Import ISO 20022 camt.054 bank files: matched credits become payments, the rest is reviewed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from billing.money import Money
from payments.exceptions import BankFileError
from payments.reconciliation.services import import_bank_file


class Command(BaseCommand):
    help = (
        "Import camt.054 files (idempotent: a file already imported records nothing). Booked "
        "credits that match an invoice by OCR reference and amount are recorded as payments, "
        "booked reversals take back the payment they reverse; entries not booked and debits "
        "are listed for information; the rest go to the review list in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--quiet-lines", action="store_true", help="Do not list review lines.")

    def handle(self, *args: Any, **options: Any) -> None:
        failed = False
        for path in options["files"]:
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{path}: cannot be read ({exc.strerror})") from exc

            def progress(done: int, total: int, name: str = path.name) -> None:
                self.stdout.write(f"  {name}: {done}/{total} lines", ending="\r")
                self.stdout.flush()

            try:
                report = import_bank_file(content, filename=path.name, by=SYSTEM, progress=progress)
            except BankFileError as exc:
                self.stderr.write(f"{path}: refused, nothing recorded: {exc}")
                failed = True
                continue
            if report.already_imported:
                self.stdout.write(f"{path}: already imported; nothing recorded")
                continue
            amounts = ", ".join(str(Money(v, k)) for k, v in sorted(report.matched_amount.items()))
            self.stdout.write(
                f"{path}: {report.total} line(s): {report.matched} matched"
                f" ({amounts or 'nothing'}), {report.reversed} reversed, {report.review} to"
                f" review, {report.info} for information (not booked, or money out),"
                f" {report.skipped} already imported"
            )
            for notice in report.notices:
                self.stdout.write(f"  reversed: {notice}")
            if not options["quiet_lines"]:
                for problem in report.problems:
                    self.stdout.write(f"  review: {problem}")
        if failed:
            raise CommandError("some files were refused (see above)")
