"""Bank-transfer reconciliation: import camt.054 files, resolve the review list.

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
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import AuditEntry, record, record_many
from billing.exceptions import BillingError
from billing.models import Invoice
from billing.money import Money
from billing.services import ReceivedAmount, record_payment_amounts
from db.dialect import insert_rows
from payments.exceptions import BankFileError, InvalidPayment
from payments.models import BankFile, BankLine, Payment, Refund
from payments.reconciliation import camt054
from payments.reconciliation.camt054 import BankTransaction, file_sha256, parse_camt054
from payments.selectors import held_amounts
from payments.services import _complete_refund

Actor = Any
Reason = BankLine.Reason
Kind = BankLine.Kind
BATCH = 500


@dataclass
class ImportReport:
    """What an import did; ``problems`` lists the lines sent to review and why, ``notices``
    what the operator should know about (reversals that took a payment back)."""

    filename: str
    sha256: str
    already_imported: bool = False
    total: int = 0
    matched: int = 0
    reversed: int = 0
    review: int = 0
    info: int = 0
    skipped: int = 0
    matched_amount: dict[str, int] = field(default_factory=dict)
    reversed_amount: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    bank_file_id: int | None = None

    def problem(self, line: BankTransaction, detail: str) -> None:
        self.review += 1
        if len(self.problems) < 1000:
            self.problems.append(f"line {line.position} ({line.element}): {detail}")


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
                    imported_by=by if hasattr(by, "pk") else None,
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


_LINE_COLUMNS = (
    "bank_file_id",
    "line_key",
    "position",
    "kind",
    "entry_status",
    "amount",
    "currency",
    "reference",
    "debtor_name",
    "booking_date",
    "bank_reference",
    "transaction_id",
    "end_to_end_id",
    "status",
    "reason",
    "detail",
)


def _row(
    bank_file: BankFile, line: BankTransaction, status: str, reason: str, detail: str
) -> tuple[Any, ...]:
    return (
        bank_file.pk,
        line.line_key,
        line.position,
        line.kind,
        line.status,
        line.amount,
        line.currency,
        line.reference,
        line.debtor_name,
        line.booking_date,
        line.bank_reference,
        line.transaction_id,
        line.end_to_end_id,
        str(status),
        str(reason),
        detail[:300],
    )


def _insert_rows(rows: list[tuple[Any, ...]]) -> None:
    """Write lines that nothing refers to yet in bulk (no model instances).

    PostgreSQL takes them by COPY; other databases by one executemany.
    """
    if rows:
        insert_rows(BankLine._meta.db_table, _LINE_COLUMNS, rows)


def _bank_line(bank_file: BankFile, line: BankTransaction, **extra: Any) -> BankLine:
    return BankLine(
        bank_file=bank_file,
        line_key=line.line_key,
        position=line.position,
        kind=line.kind,
        entry_status=line.status,
        amount=line.amount,
        currency=line.currency,
        reference=line.reference,
        debtor_name=line.debtor_name,
        booking_date=line.booking_date,
        bank_reference=line.bank_reference,
        transaction_id=line.transaction_id,
        end_to_end_id=line.end_to_end_id,
        **extra,
    )


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
                    _bank_line(
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
        rows.append(_row(bank_file, line, status, reason, detail))
        if status == BankLine.Status.REVIEW:
            report.problem(line, detail)
        else:
            report.info += 1
    _insert_rows(rows)
    BankLine.objects.bulk_create(matched)
    _record_bank_payments(matched, by=by)
    for saved in matched:
        report.matched += 1
        report.matched_amount[saved.currency] = (
            report.matched_amount.get(saved.currency, 0) + saved.amount
        )
    # After the credits: a reversal may take back a payment booked earlier in this batch.
    for line in reversals:
        _reverse(bank_file, line, by=by, report=report)


def _reversed_credit(line: BankTransaction) -> tuple[BankLine | None, str]:
    """The one credit line whose bank payment ``line`` reverses, or (None, why not).

    Candidates: credits of the same amount and currency whose payment still holds that
    much, found by the bank's transaction id or the OCR reference. They are narrowed by
    the strongest reference the reversal shares with them: the transaction id, the
    end-to-end id, the bank's reference, then the OCR reference alone. Where more than
    one remains at the strongest level, the operator decides.
    """
    # Two look-ups, each on an index: the paid lines' transaction ids, and the invoice's
    # OCR reference (its payments' lines).
    by_pk: dict[int, BankLine] = {}
    paid = BankLine.objects.filter(
        kind=Kind.CREDIT,
        status__in=[BankLine.Status.MATCHED, BankLine.Status.RESOLVED],
        amount=line.amount,
        currency=line.currency,
        payment__isnull=False,
    ).select_related("payment", "invoice", "bank_file")
    if line.transaction_id:
        by_pk.update((c.pk, c) for c in paid.filter(transaction_id=line.transaction_id))
    if line.reference:
        by_pk.update((c.pk, c) for c in paid.filter(payment__invoice__ocr_reference=line.reference))
    candidates = [c for c in by_pk.values() if c.payment.refundable >= line.amount]
    levels = [
        (
            "transaction id",
            lambda c: bool(line.transaction_id) and c.transaction_id == line.transaction_id,
        ),
        (
            "end-to-end id",
            lambda c: (
                bool(line.end_to_end_id)
                and c.end_to_end_id == line.end_to_end_id
                and _paid_ocr(c) == line.reference
            ),
        ),
        (
            "bank reference",
            lambda c: bool(line.bank_reference) and c.bank_reference == line.bank_reference,
        ),
        ("OCR reference", lambda c: bool(line.reference) and _paid_ocr(c) == line.reference),
    ]
    for name, shares in levels:
        found = [credit for credit in candidates if shares(credit)]
        if len(found) == 1:
            return found[0], name
        if len(found) > 1:
            return None, (
                f"{len(found)} bank payments of {Money(line.amount, line.currency)} share its"
                f" {name}: choose the one to reverse"
            )
    return None, (
        f"no bank payment of {Money(line.amount, line.currency) if line.currency else '?'}"
        " shares its transaction id or OCR reference"
    )


def _paid_ocr(credit: BankLine) -> str:
    """The OCR reference of the invoice a credit line paid (an operator may have applied a
    line that carried another reference, or none)."""
    return credit.invoice.ocr_reference if credit.invoice is not None else ""


def _reverse(
    bank_file: BankFile, line: BankTransaction, *, by: Actor, report: ImportReport
) -> None:
    """Inside the batch's transaction: take back the bank payment ``line`` reverses, or send
    the line to review."""
    original, how = _reversed_credit(line)
    if original is None:
        _review_reversal(bank_file, line, how, report)
        return
    payment = original.payment
    invoice = original.invoice
    assert invoice is not None
    try:
        with transaction.atomic():
            _take_back(bank_file, line, original, how, by=by)
    except BillingError as exc:  # e.g. the invoice no longer holds that much paid
        why = f"payment #{payment.pk} cannot be taken back: {exc.message}"
        _review_reversal(bank_file, line, why, report)
        return
    report.reversed += 1
    report.reversed_amount[line.currency] = (
        report.reversed_amount.get(line.currency, 0) + line.amount
    )
    report.notices.append(
        f"line {line.position}: the bank reversed payment #{payment.pk}"
        f" ({Money(line.amount, line.currency)}) of {invoice}; that amount is due again"
    )


def _review_reversal(
    bank_file: BankFile, line: BankTransaction, why: str, report: ImportReport
) -> None:
    """A reversal the import cannot take back by itself: to the review list, saying why."""
    review = _bank_line(
        bank_file,
        line,
        status=BankLine.Status.REVIEW,
        reason=Reason.REVERSAL_UNMATCHED,
        detail=why[:300],
    )
    review.save(force_insert=True)
    report.problem(line, why)


def _take_back(
    bank_file: BankFile, line: BankTransaction, original: BankLine, how: str, *, by: Actor
) -> BankLine:
    """The reversal's line, and its payment taken back as a refund the bank made: the
    payment's refunded amount and the invoice's amount due follow (billing services)."""
    payment = original.payment
    reason = f"; return reason {line.return_reason}" if line.return_reason else ""
    saved = _bank_line(
        bank_file,
        line,
        status=BankLine.Status.MATCHED,
        reason="",
        detail=(
            f"reverses line {original.position} of {original.bank_file.filename}"
            f" (payment #{payment.pk}, matched by {how}){reason}"
        )[:300],
        invoice=original.invoice,
        reverses=original,
    )
    saved.save(force_insert=True)
    refund = Refund.objects.create(
        payment=payment,
        amount=line.amount,
        currency=line.currency,
        reason=f"Reversed by the bank (bank line {saved.pk}{reason})",
        idempotency_key=f"bank_reversal_{saved.pk}",
        # The bank took the money back: it is owed again, and the customer is told.
        purpose=Refund.Purpose.REOPEN,
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    _complete_refund(refund, reference=f"bank:{line.line_key}"[:100], by=by)
    record(
        "payment.bank_transfer_reversed",
        actor=by,
        obj=payment,
        invoice_id=original.invoice_id,
        amount=line.amount,
        currency=line.currency,
        bank_line_id=saved.pk,
        reversed_bank_line_id=original.pk,
        refund_id=refund.pk,
        matched_by=how,
        return_reason=line.return_reason,
    )
    return saved


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
        if locked.kind != Kind.CREDIT:
            raise InvalidPayment(
                _(
                    "only money in can pay an invoice: a %(kind)s is dismissed with the reason"
                    " (take a payment back by refunding it)"
                )
                % {"kind": locked.get_kind_display().lower()},
                field="status",
            )
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
