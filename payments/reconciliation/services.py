"""Bank-transfer reconciliation: import camt.054 files (the review list is ``review``).

Every transaction of a file becomes a ``BankLine`` (the parser, ``camt054``, says what
it is; docs/payments.md, "Bank transfers"):

* a **booked credit** is matched by its OCR reference to an open invoice; when the
  amount is exactly what is left to pay, it becomes a bank-transfer payment. The matched
  lines of a batch are recorded together: their payments by one INSERT, their invoices
  by ``billing.services.record_payment_amounts`` (one lock, one UPDATE, one receipt job),
  and every payment and invoice change as its own audit event (``audit.record_many``);
* a booked **reversal** (a debit that takes back an earlier credit) finds the one bank
  payment it reverses by the bank's references and the amount, and takes it back
  through the billing services: the invoice's amount due returns (audited) and the
  import's report tells the operator;
* entries **not booked** (pending, for information) and plain **debits** are listed for
  information: nothing is paid or taken back;
* everything else (an unknown or missing reference, another amount or currency, a
  closed invoice, a malformed transaction, an entry that does not add up, an unknown
  status, a reversal no single payment matches, a reversal of a debit) waits in the
  review list, where an operator applies it to an invoice or dismisses it.

Importing is idempotent: the file's SHA-256 identifies it (a second import
records nothing) and each line's identity (``line_key``: the bank's own reference,
else the file's message id and positions) is recorded once even if another file
repeats it. Lines are written in batches, each its own transaction; an interrupted
import resumes when the same file is imported again.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from billing.models import Invoice
from billing.money import Money
from payments.exceptions import BankFileError
from payments.models import BankFile, BankLine
from payments.reconciliation import camt054
from payments.reconciliation.bank_lines import (
    ImportReport,
    bank_line,
    insert_rows,
    line_row,
    record_bank_payments,
)
from payments.reconciliation.camt054 import BankTransaction, file_sha256, parse_camt054
from payments.reconciliation.reversals import reverse
from payments.selectors import held_amounts
from security.actors import Actor, user_of

Reason = BankLine.Reason
Kind = BankLine.Kind


BATCH = 500


def import_bank_file(
    content: bytes,
    *,
    filename: str,
    by: Actor,
    request: HttpRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Record a camt.054 file's transactions once each; a malformed file raises BankFileError
    naming the line or element and records nothing."""
    if not isinstance(content, bytes) or not content.strip():
        raise BankFileError(_("the file is empty"), field="file")
    if len(content) > settings.PAYMENTS_BANK_FILE_MAX_BYTES:
        raise BankFileError(
            _("the file is larger than %(limit)s bytes")
            % {"limit": settings.PAYMENTS_BANK_FILE_MAX_BYTES},
            field="file",
        )
    sha = file_sha256(content)
    report = ImportReport(filename=filename[:255], sha256=sha)
    existing = BankFile.objects.filter(sha256=sha).first()
    if existing is not None and existing.completed_at is not None:
        report.already_imported = True
        report.bank_file_id = existing.pk
        return report
    parsed = parse_camt054(io.BytesIO(content))
    report.total = len(parsed.lines)
    if existing is None:
        try:
            with transaction.atomic():
                existing = BankFile.objects.create(
                    sha256=sha,
                    filename=report.filename,
                    message_id=parsed.message_id[:100],
                    imported_by=user_of(by),
                )
        except IntegrityError:
            report.already_imported = True
            return report
    bank_file = existing
    report.bank_file_id = bank_file.pk
    done = 0
    for start in range(0, len(parsed.lines), BATCH):
        batch = parsed.lines[start : start + BATCH]
        with transaction.atomic():
            _import_batch(bank_file, batch, by=by, report=report)
        done += len(batch)
        if progress is not None:
            progress(done, report.total)
    with transaction.atomic():
        locked = BankFile.objects.select_for_update().get(pk=bank_file.pk)
        counts = dict(
            locked.lines.values("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        reversed_lines = locked.lines.filter(
            kind=Kind.REVERSAL, status=BankLine.Status.MATCHED
        ).count()
        locked.lines_total = sum(counts.values())
        locked.lines_matched = counts.get(BankLine.Status.MATCHED, 0) - reversed_lines
        locked.lines_reversed = reversed_lines
        locked.lines_info = counts.get(BankLine.Status.INFO, 0)
        locked.lines_review = (
            locked.lines_total - locked.lines_matched - reversed_lines - locked.lines_info
        )
        locked.lines_skipped += report.skipped
        locked.completed_at = timezone.now()
        locked.save()
        record(
            "bank_file.imported",
            actor=by,
            obj=locked,
            request=request,
            filename=locked.filename,
            sha256=sha,
            message_id=locked.message_id,
            lines=report.total,
            matched=report.matched,
            reversed=report.reversed,
            review=report.review,
            info=report.info,
            skipped=report.skipped,
            matched_amount=report.matched_amount,
            reversed_amount=report.reversed_amount,
        )
    return report


def _decide(credit: BankTransaction, invoice: Invoice | None, due: int) -> tuple[str, str]:
    """(reason, detail) for a booked credit that needs review, or ("", "") for a match."""
    if not credit.reference:
        return Reason.NO_REFERENCE, f"{credit.element}: no structured creditor reference (OCR)"
    if invoice is None:
        return Reason.UNKNOWN_REFERENCE, f"no invoice has OCR reference {credit.reference}"
    if credit.currency != invoice.currency:
        return Reason.CURRENCY_MISMATCH, (
            f"{credit.currency} paid, but {invoice} is in {invoice.currency}"
        )
    if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE):
        return Reason.INVOICE_CLOSED, f"{invoice} is {invoice.status}"
    if credit.amount != due:
        return Reason.AMOUNT_MISMATCH, (
            f"{Money(credit.amount, credit.currency)} paid, but"
            f" {Money(max(due, 0), invoice.currency)} is due on {invoice}"
        )
    return "", ""


def _not_taken(line: BankTransaction) -> tuple[str, str, str]:
    """(status, reason, detail) of a line that is neither matched nor reversed here."""
    if line.problem:
        return BankLine.Status.REVIEW, line.problem, line.error
    if line.status != camt054.BOOKED:
        return (
            BankLine.Status.INFO,
            "",
            (
                f"entry status {line.status}: not booked, nothing is paid; the booked entry"
                " comes in a later file"
            ),
        )
    if line.kind == Kind.DEBIT:
        return BankLine.Status.INFO, "", "money out (DBIT): not a payment of an invoice"
    if line.kind == Kind.DEBIT_REVERSAL:
        return (
            BankLine.Status.REVIEW,
            Reason.DEBIT_REVERSAL,
            (
                "CRDT with RvslInd: money back from an earlier debit (e.g. a returned refund),"
                " not a payment of an invoice"
            ),
        )
    raise AssertionError(f"a booked {line.kind} is matched, not listed")  # pragma: no cover


def _amounts_due(
    invoices: dict[str, Invoice], credits: Sequence[BankTransaction]
) -> dict[int, int]:
    """What is left to pay on each referenced invoice, less payments in flight (one query)."""
    wanted = {invoices[c.reference].pk for c in credits if c.reference in invoices}
    held = held_amounts(wanted)
    return {
        invoice.pk: invoice.amount_due - held.get(invoice.pk, 0)
        for invoice in invoices.values()
        if invoice.pk in wanted
    }


def _import_batch(
    bank_file: BankFile, batch: Sequence[BankTransaction], *, by: Actor, report: ImportReport
) -> None:
    keys = [line.line_key for line in batch]
    seen = set(BankLine.objects.filter(line_key__in=keys).values_list("line_key", flat=True))
    fresh = []
    for line in batch:
        if line.line_key in seen:
            report.skipped += 1
            continue
        seen.add(line.line_key)
        fresh.append(line)
    credits = [line for line in fresh if line.kind == Kind.CREDIT and line.booked]
    refs = sorted({c.reference for c in credits if c.reference})
    # Locked in id order (no deadlock with card payments, which lock one invoice each).
    invoices = (
        {
            invoice.ocr_reference: invoice
            for invoice in Invoice.objects.select_for_update(of=("self",))
            .filter(ocr_reference__in=refs, kind=Invoice.Kind.INVOICE)
            .order_by("pk")
        }
        if refs
        else {}
    )
    due = _amounts_due(invoices, credits)
    matched: list[BankLine] = []
    reversals: list[BankTransaction] = []
    rows: list[tuple[Any, ...]] = []
    for line in fresh:
        if line.booked and line.kind == Kind.REVERSAL:
            reversals.append(line)
            continue
        if line.booked and line.kind == Kind.CREDIT:
            invoice = invoices.get(line.reference)
            reason, detail = _decide(line, invoice, due.get(invoice.pk, 0) if invoice else 0)
            if not reason:
                assert invoice is not None
                due[invoice.pk] -= line.amount
                matched.append(
                    bank_line(
                        bank_file,
                        line,
                        status=BankLine.Status.MATCHED,
                        reason="",
                        detail="",
                        invoice=invoice,
                    )
                )
                continue
            status: str = BankLine.Status.REVIEW
        else:
            status, reason, detail = _not_taken(line)
        rows.append(line_row(bank_file, line, status, reason, detail))
        if status == BankLine.Status.REVIEW:
            report.problem(line, detail)
        else:
            report.info += 1
    insert_rows(rows)
    BankLine.objects.bulk_create(matched)
    record_bank_payments(matched, by=by)
    for saved in matched:
        report.matched += 1
        report.matched_amount[saved.currency] = (
            report.matched_amount.get(saved.currency, 0) + saved.amount
        )
    # After the credits: a reversal may take back a payment booked earlier in this batch.
    for line in reversals:
        reverse(bank_file, line, by=by, report=report)
