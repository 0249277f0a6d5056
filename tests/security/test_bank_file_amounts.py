"""A camt.054 file is untrusted input: an amount written to overflow (``1e999999999``) or
past what any invoice holds sends its line to review with the reason, and the rest of the
file is imported; it never stops the import or reaches the database's integers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audit import SYSTEM
from billing.models import Customer, Invoice
from payments.models import BankLine
from payments.reconciliation.camt054 import sample_camt054
from payments.reconciliation.services import import_bank_file
from tests.factories import line

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("amount", ["1e999999999", "1E+999999", "9" * 19, "-0.01", "NaN"])
def test_an_overflowing_or_unreadable_amount_sends_its_line_to_review_and_the_rest_books(
    amount: str, make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    paid = make_open_invoice(alice_company, [line("Work", "1", "100")])
    content = sample_camt054(
        [
            {"amount": "125.00", "reference": paid.ocr_reference},
            {"amount": "1.00", "reference": "1234567890"},
        ],
        batch=False,
    ).replace(b">1.00<", f">{amount}<".encode())  # the second entry and its transaction

    report = import_bank_file(content, filename="hostile.xml", by=SYSTEM)

    assert (report.matched, report.review) == (1, 1)
    bad = BankLine.objects.get(position=2)
    assert (bad.status, bad.reason, bad.amount) == ("review", "invalid", 0)
    assert bad.detail.startswith("Ntry[2]/NtryDtls/TxDtls[1]/Amt:")
    assert amount[:10] in bad.detail
    paid.refresh_from_db()
    assert paid.status == Invoice.Status.PAID


def test_an_overflowing_amount_in_a_batch_holds_back_the_whole_batch_naming_the_line(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    invoice = make_open_invoice(alice_company, [line("Work", "1", "100")])
    content = sample_camt054(
        [
            {"amount": "125.00", "reference": invoice.ocr_reference},
            {"amount": "1.00", "reference": "1234567890"},
        ]
    ).replace(b">1.00</Amt></TxAmt>", b">1e999999999</Amt></TxAmt>")

    report = import_bank_file(content, filename="hostile-batch.xml", by=SYSTEM)

    assert (report.matched, report.review) == (0, 2)
    reasons = dict(BankLine.objects.values_list("position", "reason"))
    assert reasons == {1: "batch_mismatch", 2: "invalid"}
    assert "TxDtls[2]/Amt: '1e999999999' is not an ISO 20022 amount" in report.problems[1]
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0
