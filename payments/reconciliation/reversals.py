"""Reversals in a bank file: a booked debit that takes back an earlier credit finds the
one bank payment it reverses (by the bank's references and the amount) and takes it back
as a refund the bank made (``payments.services.refunds.open_refund``), or waits in the
review list saying why."""

from __future__ import annotations

from django.db import transaction

from billing.exceptions import BillingError
from billing.money import Money
from payments.models import BankFile, BankLine, Refund
from payments.reconciliation.bank_lines import ImportReport, bank_line
from payments.reconciliation.camt054 import BankTransaction
from payments.services.refunds import complete_refund, open_refund
from security.actors import Actor

Reason = BankLine.Reason
Kind = BankLine.Kind


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


def reverse(bank_file: BankFile, line: BankTransaction, *, by: Actor, report: ImportReport) -> None:
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
    review = bank_line(
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
    saved = bank_line(
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
    refund = open_refund(
        payment,
        amount=Money(line.amount, line.currency),
        reason=f"Reversed by the bank (bank line {saved.pk}{reason})",
        idempotency_key=f"bank_reversal_{saved.pk}",
        # The bank took the money back: it is owed again, and the customer is told.
        purpose=Refund.Purpose.REOPEN,
        event="payment.bank_transfer_reversed",
        by=by,
        invoice_id=original.invoice_id,
        bank_line_id=saved.pk,
        reversed_bank_line_id=original.pk,
        matched_by=how,
        return_reason=line.return_reason,
    )
    complete_refund(refund, reference=f"bank:{line.line_key}"[:100], by=by)
    return saved
