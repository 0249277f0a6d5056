"""Bank-transfer reconciliation: import camt.054 files, resolve the review list.

Each credit line of a file is matched by its OCR reference to an open invoice;
when the amount is exactly what is left to pay, it becomes a bank-transfer
payment. The matched lines of a batch are recorded together: their payments by one
INSERT, their invoices by ``billing.services.record_payment_amounts`` (one lock, one
UPDATE, one receipt job), and every payment and invoice change as its own audit
event (``audit.record_many``). Every other
line (unknown or missing reference, another amount or currency, a closed
invoice, a malformed transaction) waits in the review list, where an operator
applies it to an invoice or dismisses it.

Importing is idempotent: the file's SHA-256 identifies it (a second import
records nothing) and each line's bank id (``line_key``) is recorded once even
if another file repeats it. Lines are written in batches, each its own
transaction; an interrupted import resumes when the same file is imported again.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import AuditEntry, record, record_many
from billing.models import Invoice
from billing.money import Money
from billing.services import ReceivedAmount, record_payment_amounts
from payments.exceptions import BankFileError, InvalidPayment
from payments.models import BankFile, BankLine, Payment
from payments.reconciliation.camt054 import BankCredit, file_sha256, parse_camt054
from payments.selectors import held_amounts

Actor = Any
Reason = BankLine.Reason
BATCH = 500


@dataclass
class ImportReport:
    """What an import did; ``problems`` lists the lines sent to review and why."""

    filename: str
    sha256: str
    already_imported: bool = False
    total: int = 0
    matched: int = 0
    review: int = 0
    skipped: int = 0
    debits_skipped: int = 0
    matched_amount: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    bank_file_id: int | None = None


def import_bank_file(
    content: bytes,
    *,
    filename: str,
    by: Actor,
    request: HttpRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Record a camt.054 file's credits once each; a malformed file raises BankFileError
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
    parsed = parse_camt054(io.BytesIO(content), file_hash=sha)
    report.total = len(parsed.credits)
    report.debits_skipped = parsed.debits_skipped
    if existing is None:
        try:
            with transaction.atomic():
                existing = BankFile.objects.create(
                    sha256=sha,
                    filename=report.filename,
                    message_id=parsed.message_id[:100],
                    imported_by=by if hasattr(by, "pk") else None,
                )
        except IntegrityError:
            report.already_imported = True
            return report
    bank_file = existing
    report.bank_file_id = bank_file.pk
    done = 0
    for start in range(0, len(parsed.credits), BATCH):
        batch = parsed.credits[start : start + BATCH]
        with transaction.atomic():
            _import_batch(bank_file, batch, by=by, report=report)
        done += len(batch)
        if progress is not None:
            progress(done, report.total)
    with transaction.atomic():
        locked = BankFile.objects.select_for_update().get(pk=bank_file.pk)
        locked.lines_total = locked.lines.count()
        locked.lines_matched = locked.lines.filter(status=BankLine.Status.MATCHED).count()
        locked.lines_review = locked.lines.exclude(status=BankLine.Status.MATCHED).count()
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
            review=report.review,
            skipped=report.skipped,
            matched_amount=report.matched_amount,
        )
    return report


def _decide(credit: BankCredit, invoice: Invoice | None, due: int) -> tuple[str, str]:
    """(reason, detail) for a line that needs review, or ("", "") for a match."""
    if credit.error:
        return Reason.INVALID, credit.error
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


_LINE_COLUMNS = (
    "bank_file_id",
    "line_key",
    "position",
    "amount",
    "currency",
    "reference",
    "debtor_name",
    "booking_date",
    "status",
    "reason",
    "detail",
)


def _insert_review_lines(rows: list[tuple[Any, ...]]) -> None:
    """Write review lines in bulk (no model instances: nothing refers to them yet).

    PostgreSQL takes them by COPY; other databases by one executemany.
    """
    if not rows:
        return
    table = connection.ops.quote_name(BankLine._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _LINE_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(_LINE_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def _amounts_due(invoices: dict[str, Invoice], credits: Sequence[BankCredit]) -> dict[int, int]:
    """What is left to pay on each referenced invoice, less payments in flight (one query)."""
    wanted = {invoices[c.reference].pk for c in credits if c.reference in invoices}
    held = held_amounts(wanted)
    return {
        invoice.pk: invoice.amount_due - held.get(invoice.pk, 0)
        for invoice in invoices.values()
        if invoice.pk in wanted
    }


def _import_batch(
    bank_file: BankFile, batch: Sequence[BankCredit], *, by: Actor, report: ImportReport
) -> None:
    keys = [c.line_key for c in batch]
    seen = set(BankLine.objects.filter(line_key__in=keys).values_list("line_key", flat=True))
    refs = sorted({c.reference for c in batch if c.reference})
    # Locked in id order (no deadlock with card payments, which lock one invoice each).
    invoices = {
        invoice.ocr_reference: invoice
        for invoice in Invoice.objects.select_for_update(of=("self",))
        .filter(ocr_reference__in=refs, kind=Invoice.Kind.INVOICE)
        .order_by("pk")
    }
    due = _amounts_due(invoices, batch)
    matched: list[BankLine] = []
    review: list[tuple[Any, ...]] = []
    for credit in batch:
        if credit.line_key in seen:
            report.skipped += 1
            continue
        seen.add(credit.line_key)
        invoice = invoices.get(credit.reference)
        reason, detail = _decide(credit, invoice, due.get(invoice.pk, 0) if invoice else 0)
        if reason:
            review.append(
                (
                    bank_file.pk,
                    credit.line_key,
                    credit.position,
                    credit.amount,
                    credit.currency,
                    credit.reference,
                    credit.debtor_name,
                    credit.booking_date,
                    BankLine.Status.REVIEW.value,
                    str(reason),
                    detail[:300],
                )
            )
            report.review += 1
            if len(report.problems) < 1000:
                report.problems.append(f"line {credit.position} ({credit.element}): {detail}")
            continue
        assert invoice is not None
        due[invoice.pk] -= credit.amount
        matched.append(
            BankLine(
                bank_file=bank_file,
                line_key=credit.line_key,
                position=credit.position,
                amount=credit.amount,
                currency=credit.currency,
                reference=credit.reference,
                debtor_name=credit.debtor_name,
                booking_date=credit.booking_date,
                status=BankLine.Status.MATCHED,
                reason="",
                detail="",
                invoice=invoice,
            )
        )
    _insert_review_lines(review)
    BankLine.objects.bulk_create(matched)
    _record_bank_payments(matched, by=by)
    for line in matched:
        report.matched += 1
        report.matched_amount[line.currency] = (
            report.matched_amount.get(line.currency, 0) + line.amount
        )


def _record_bank_payments(lines: Sequence[BankLine], *, by: Actor) -> list[Payment]:
    """Inside the caller's transaction: each line's payment and its invoice's new amount due.

    A constant number of queries however many lines: one INSERT of the payments
    (PostgreSQL returns their ids), one call to billing for every invoice, one
    append of the payments' audit events.
    """
    if not lines:
        return []
    settled_at = timezone.now()
    unsaved = []
    for line in lines:
        assert line.invoice_id is not None  # a matched or applied line names its invoice
        unsaved.append(
            Payment(
                invoice_id=line.invoice_id,
                amount=line.amount,
                currency=line.currency,
                method=Payment.Method.BANK_TRANSFER,
                status=Payment.Status.SUCCEEDED,
                gateway="bank",
                gateway_reference=line.line_key[:100],
                idempotency_key=f"bank_{line.pk}",
                bank_line=line,
                settled_at=settled_at,
            )
        )
    payments = Payment.objects.bulk_create(unsaved)
    record_payment_amounts(
        [
            ReceivedAmount(
                payment.invoice_id, Money(payment.amount, payment.currency), f"payment:{payment.pk}"
            )
            for payment in payments
        ],
        by=by,
    )
    record_many(
        [
            AuditEntry(
                "payment.bank_transfer_recorded",
                payment,
                {
                    "invoice_id": payment.invoice_id,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "bank_line_id": line.pk,
                },
            )
            for payment, line in zip(payments, lines, strict=True)
        ],
        actor=by,
    )
    return payments


def apply_bank_line(
    line: BankLine, *, invoice: Invoice, by: Actor, request: HttpRequest | None = None
) -> Payment:
    """An operator applies a reviewed line to an invoice: same currency, at most the amount due."""
    with transaction.atomic():
        locked = BankLine.objects.select_for_update().get(pk=line.pk)
        if locked.status != BankLine.Status.REVIEW:
            raise InvalidPayment(_("this bank line is already resolved"), field="status")
        if locked.amount <= 0 or not locked.currency:
            raise InvalidPayment(_("a malformed line cannot be applied"), field="amount")
        target = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice.pk)
        if target.currency != locked.currency:
            raise InvalidPayment(
                _("the line is in %(line)s, the invoice in %(invoice)s")
                % {"line": locked.currency, "invoice": target.currency},
                field="currency",
            )
        locked.status = BankLine.Status.RESOLVED
        locked.invoice = target
        locked.save(update_fields=["status", "invoice"])
        try:
            [payment] = _record_bank_payments([locked], by=by)
        except Exception as exc:
            message = getattr(exc, "message", str(exc))
            raise InvalidPayment(
                _("the invoice cannot take it: %(reason)s") % {"reason": message}, field="invoice"
            ) from exc
        record(
            "bank_line.applied",
            actor=by,
            obj=locked,
            request=request,
            invoice_id=target.pk,
            payment_id=payment.pk,
            amount=locked.amount,
        )
    return payment


def dismiss_bank_line(
    line: BankLine, *, reason: str, by: Actor, request: HttpRequest | None = None
) -> BankLine:
    """An operator closes a reviewed line without a payment (e.g. sent back to the payer)."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidPayment(_("give the reason for dismissing the line"), field="reason")
    with transaction.atomic():
        locked = BankLine.objects.select_for_update().get(pk=line.pk)
        if locked.status != BankLine.Status.REVIEW:
            raise InvalidPayment(_("this bank line is already resolved"), field="status")
        locked.status = BankLine.Status.RESOLVED
        locked.detail = f"dismissed: {reason}"[:300]
        locked.save(update_fields=["status", "detail"])
        record("bank_line.dismissed", actor=by, obj=locked, request=request, reason=reason[:300])
    return locked
