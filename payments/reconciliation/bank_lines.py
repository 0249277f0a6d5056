"""The bank lines an import writes, what it reports, and the bank-transfer payments its
matched (or applied) lines become: shared by the import, its reversals and the review
list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from audit import AuditEntry, record_many
from billing.money import Money
from billing.services import ReceivedAmount, record_payment_amounts
from db import dialect
from payments.models import BankFile, BankLine, Payment
from payments.reconciliation.camt054 import BankTransaction
from security.actors import Actor


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


def line_row(
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


def insert_rows(rows: list[tuple[Any, ...]]) -> None:
    """Write lines that nothing refers to yet in bulk (no model instances).

    PostgreSQL takes them by COPY; other databases by one executemany.
    """
    if rows:
        dialect.insert_rows(BankLine._meta.db_table, _LINE_COLUMNS, rows)


def bank_line(bank_file: BankFile, line: BankTransaction, **extra: Any) -> BankLine:
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


def record_bank_payments(lines: Sequence[BankLine], *, by: Actor) -> list[Payment]:
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
