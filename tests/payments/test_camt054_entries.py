"""camt.054 as banks send it: entry status, reversals, each line's identity, batch sums.

The files are tests/payments/camt054/*.xml, written after the structure banks publish
(camt.054.001.02 with ``<Sts>BOOK</Sts>``, 001.08 with ``<Sts><Cd>BOOK</Cd></Sts>``,
batches with ``Btch``, several ``TxDtls``, ``AcctSvcrRef``, ``RvslInd``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audit import SYSTEM
from audit.verify import verify_chain
from billing.models import Customer, Invoice
from payments.exceptions import InvalidPayment
from payments.models import BankFile, BankLine, Payment, Refund
from payments.reconciliation.review import apply_bank_line
from payments.reconciliation.services import import_bank_file
from security.models import User
from tests.factories import audit_events, line
from tests.payments.fixtures import camt054_file

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]


@pytest.fixture
def sek_invoice(
    make_open_invoice: MakeInvoice, alice_company: Customer
) -> Callable[[str], Invoice]:
    """``sek_invoice("1000")``: an open invoice of Alice's for that net amount + 25 % VAT."""
    return lambda net: make_open_invoice(alice_company, [line("Work", "1", net)])


@pytest.fixture
def eur_invoices(make_open_invoice: MakeInvoice, bob_company: Customer) -> list[Invoice]:
    """Three open invoices of Bob's, 500.00 EUR each (intra-EU supply, no VAT)."""
    return [
        make_open_invoice(bob_company, [line("Machine", "1", "500.00", "K", "0")]) for _ in range(3)
    ]


def _fresh(invoice: Invoice) -> Invoice:
    return Invoice.objects.get(pk=invoice.pk)


def _line_of(invoice: Invoice) -> BankLine:
    return BankLine.objects.get(reference=invoice.ocr_reference, kind=BankLine.Kind.CREDIT)


# --- 1. only booked entries move money ----------------------------------------------


def test_only_a_booked_entry_pays_pending_and_information_entries_are_listed(
    sek_invoice: Callable[[str], Invoice],
) -> None:
    booked, booked_small = sek_invoice("1000"), sek_invoice("250")
    pending, informed = sek_invoice("1000"), sek_invoice("250")
    content = camt054_file(
        "bankgirot_v02_statuses.xml",
        msg_id="BG20261127-0001",
        ocr_booked=booked.ocr_reference,
        ocr_booked_small=booked_small.ocr_reference,
        ocr_pending=pending.ocr_reference,
        ocr_info=informed.ocr_reference,
    )

    report = import_bank_file(content, filename="bg.xml", by=SYSTEM)

    assert (report.total, report.matched, report.info, report.review) == (4, 2, 2, 0)
    assert _fresh(booked).status == _fresh(booked_small).status == Invoice.Status.PAID
    for waiting, status in ((pending, "PDNG"), (informed, "INFO")):
        assert (_fresh(waiting).status, _fresh(waiting).amount_paid) == ("open", 0)
        listed = _line_of(waiting)
        assert (listed.status, listed.entry_status, listed.reason) == ("info", status, "")
        assert "not booked" in listed.detail
    assert not Payment.objects.filter(invoice__in=[pending, informed]).exists()
    assert BankFile.objects.get().lines_info == 2


def test_a_pending_entry_is_matched_when_the_bank_sends_it_booked(
    eur_invoices: list[Invoice],
) -> None:
    paid_now, paid_later, held = eur_invoices
    first = camt054_file(
        "sepa_v08_statuses.xml",
        msg_id="CAMT054-20261127-1",
        amount="500.00",
        tx_id="T20261127CT0001",
        tx_id_pending="T20261127CT0002",
        tx_id_held="T20261127CT0003",
        ocr_booked=paid_now.ocr_reference,
        ocr_pending=paid_later.ocr_reference,
        ocr_held=held.ocr_reference,
    )
    import_bank_file(first, filename="day1.xml", by=SYSTEM)
    assert _fresh(paid_later).amount_paid == 0
    # The next day the same transaction arrives booked (same TxId, status BOOK).
    second = camt054_file(
        "sepa_v08_statuses.xml",
        msg_id="CAMT054-20261128-1",
        amount="500.00",
        tx_id="T20261127CT0002",
        tx_id_pending="T20261128CT0009",
        tx_id_held="T20261128CT0010",
        ocr_booked=paid_later.ocr_reference,
        ocr_pending="9999999999",
        ocr_held="9999999998",
    )

    report = import_bank_file(second, filename="day2.xml", by=SYSTEM)

    assert report.matched == 1
    assert _fresh(paid_later).status == Invoice.Status.PAID
    assert Payment.objects.filter(invoice=paid_later).count() == 1


def test_an_entry_with_a_status_the_import_does_not_know_goes_to_review(
    eur_invoices: list[Invoice],
) -> None:
    paid, pending, held = eur_invoices
    content = camt054_file(
        "sepa_v08_statuses.xml",
        msg_id="CAMT054-20261127-2",
        amount="500.00",
        tx_id="T1",
        tx_id_pending="T2",
        tx_id_held="T3",
        ocr_booked=paid.ocr_reference,
        ocr_pending=pending.ocr_reference,
        ocr_held=held.ocr_reference,
    )

    report = import_bank_file(content, filename="sts.xml", by=SYSTEM)

    assert (report.matched, report.info, report.review) == (1, 1, 1)
    reviewed = _line_of(held)
    assert (reviewed.status, reviewed.reason) == ("review", "unknown_status")
    assert "Ntry[3]/Sts is 'PRTRY:HOLD'" in reviewed.detail
    assert _fresh(held).amount_paid == 0


# --- 2. reversals --------------------------------------------------------------------


def _credit_then_reversal(invoice: Invoice, tx_id: str = "T20261127CT0001") -> tuple[bytes, bytes]:
    credit = camt054_file(
        "sepa_v08_statuses.xml",
        msg_id="CAMT054-20261127-3",
        amount="500.00",
        tx_id=tx_id,
        tx_id_pending="T-P",
        tx_id_held="T-H",
        ocr_booked=invoice.ocr_reference,
        ocr_pending="8888888888",
        ocr_held="8888888887",
    )
    reversal = camt054_file(
        "sepa_v08_reversals.xml",
        msg_id="CAMT054-20261201-1",
        amount="500.00",
        tx_id=tx_id,
        ocr_reversed=invoice.ocr_reference,
    )
    return credit, reversal


def test_a_reversed_credit_takes_the_payment_back_and_the_invoice_is_due_again_audited(
    eur_invoices: list[Invoice],
) -> None:
    invoice = eur_invoices[0]
    credit, reversal = _credit_then_reversal(invoice)
    import_bank_file(credit, filename="credit.xml", by=SYSTEM)
    assert _fresh(invoice).status == Invoice.Status.PAID
    payment = Payment.objects.get(invoice=invoice)

    report = import_bank_file(reversal, filename="reversal.xml", by=SYSTEM)

    reopened = _fresh(invoice)
    assert (reopened.status, reopened.amount_due) == (Invoice.Status.OPEN, 50_000)
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == (Payment.Status.REFUNDED, 50_000)
    refund = Refund.objects.get(payment=payment)
    assert refund.status == Refund.Status.SUCCEEDED and "Reversed by the bank" in refund.reason
    taken_back = BankLine.objects.get(kind=BankLine.Kind.REVERSAL, status="matched")
    assert taken_back.reverses == _line_of(invoice) and taken_back.invoice == invoice
    assert "matched by transaction id" in taken_back.detail and "FRAD" in taken_back.detail
    [event] = audit_events("payment.bank_transfer_reversed", payment)
    assert event.details["invoice_id"] == invoice.pk and event.details["amount"] == 50_000
    assert event.details["refund_id"] == refund.pk  # opened with its refund (open_refund)
    [change] = audit_events("invoice.refund_recorded", invoice)
    assert (change.details["previous_status"], change.details["status"]) == ("paid", "open")
    # The operator is told.
    assert report.reversed == 1 and report.reversed_amount == {"EUR": 50_000}
    assert str(invoice) in report.notices[0] and "due again" in report.notices[0]
    assert BankFile.objects.get(filename="reversal.xml").lines_reversed == 1
    assert verify_chain().ok


def test_debits_are_listed_and_reversals_nothing_matches_go_to_review(
    eur_invoices: list[Invoice], clerk: User
) -> None:
    invoice = eur_invoices[0]
    credit, reversal = _credit_then_reversal(invoice)
    import_bank_file(credit, filename="credit.xml", by=SYSTEM)

    report = import_bank_file(reversal, filename="reversal.xml", by=SYSTEM)

    lines = {ln.position: ln for ln in BankLine.objects.filter(bank_file__filename="reversal.xml")}
    charges, returned_refund, unknown = lines[2], lines[3], lines[4]
    assert (charges.kind, charges.status, charges.amount) == ("debit", "info", 450)
    assert "money out" in charges.detail
    assert (returned_refund.kind, returned_refund.status, returned_refund.reason) == (
        "debit_reversal",
        "review",
        "debit_reversal",
    )
    assert (unknown.kind, unknown.status, unknown.reason) == (
        "reversal",
        "review",
        "reversal_unmatched",
    )
    assert (report.reversed, report.info, report.review) == (1, 1, 2)
    # Money out, or money back from a debit, never pays an invoice: dismissed, not applied.
    for not_a_payment in (unknown, returned_refund):
        with pytest.raises(InvalidPayment) as refused:
            apply_bank_line(not_a_payment, invoice=eur_invoices[1], by=clerk)
        assert refused.value.field == "status"
    assert _fresh(eur_invoices[1]).amount_paid == 0


def test_a_reversal_takes_back_the_payment_its_transaction_id_names_not_a_look_alike(
    sek_invoice: Callable[[str], Invoice], clerk: User
) -> None:
    # Two bank payments of 1,250.00 on one invoice of 2,500.00 (paid in two parts: the
    # first applied by an operator, the second matched as what was then due): the same
    # OCR, the same amount, other transaction ids.
    invoice = sek_invoice("2000")
    for part in (1, 2):
        content = camt054_file(
            "sepa_v08_statuses.xml",
            msg_id=f"PART-{part}",
            amount="1250.00",
            tx_id=f"T-PART-{part}",
            tx_id_pending=f"T-PART-{part}-P",
            tx_id_held=f"T-PART-{part}-H",
            ocr_booked=invoice.ocr_reference,
            ocr_pending="7777777777",
            ocr_held="7777777776",
        ).replace(b'Ccy="EUR"', b'Ccy="SEK"')
        import_bank_file(content, filename=f"part{part}.xml", by=SYSTEM)
        if part == 1:
            apply_bank_line(
                BankLine.objects.get(transaction_id="T-PART-1"), invoice=invoice, by=clerk
            )
    assert _fresh(invoice).status == Invoice.Status.PAID
    by_tx_id = camt054_file(
        "sepa_v08_reversals.xml",
        msg_id="REV-1",
        amount="1250.00",
        tx_id="T-PART-2",
        ocr_reversed=invoice.ocr_reference,
    ).replace(b'Ccy="EUR"', b'Ccy="SEK"')

    import_bank_file(by_tx_id, filename="rev1.xml", by=SYSTEM)

    second = Payment.objects.get(bank_line__transaction_id="T-PART-2")
    first = Payment.objects.get(bank_line__transaction_id="T-PART-1")
    assert (first.status, second.status) == (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED)
    assert _fresh(invoice).amount_due == 125_000
    # Without the transaction id, two payments it could be (the first, and a third of the
    # same amount, end-to-end id and OCR booked since): the operator decides.
    third = camt054_file(
        "sepa_v08_statuses.xml",
        msg_id="PART-3",
        amount="1250.00",
        tx_id="T-PART-3",
        tx_id_pending="T-PART-3-P",
        tx_id_held="T-PART-3-H",
        ocr_booked=invoice.ocr_reference,
        ocr_pending="7777777775",
        ocr_held="7777777774",
    ).replace(b'Ccy="EUR"', b'Ccy="SEK"')
    import_bank_file(third, filename="part3.xml", by=SYSTEM)
    assert _fresh(invoice).status == Invoice.Status.PAID  # 1,250.00 was exactly what was due
    by_ocr_only = by_tx_id.replace(b"<TxId>T-PART-2</TxId>", b"").replace(b"REV-1", b"REV-2")

    report = import_bank_file(by_ocr_only, filename="rev2.xml", by=SYSTEM)

    ambiguous = BankLine.objects.get(bank_file__filename="rev2.xml", position=1)
    assert ambiguous.reason == "reversal_unmatched"
    assert "2 bank payments of 1,250.00 SEK share its end-to-end id" in ambiguous.detail
    assert report.reversed == 0 and _fresh(invoice).status == Invoice.Status.PAID


def test_a_reversal_is_taken_back_once_whatever_file_repeats_it(
    eur_invoices: list[Invoice],
) -> None:
    invoice = eur_invoices[0]
    credit, reversal = _credit_then_reversal(invoice)
    import_bank_file(credit, filename="credit.xml", by=SYSTEM)
    import_bank_file(reversal, filename="reversal.xml", by=SYSTEM)

    again = import_bank_file(reversal, filename="reversal-copy.xml", by=SYSTEM)
    resent = import_bank_file(
        reversal.replace(b"CAMT054-20261201-1", b"CAMT054-20261201-RESENT"),
        filename="reversal-resent.xml",
        by=SYSTEM,
    )

    assert again.already_imported
    assert resent.reversed == 0 and resent.skipped == 4
    assert Refund.objects.count() == 1
    assert _fresh(invoice).amount_due == 50_000


# --- 3. each line's identity -----------------------------------------------------------


def _no_refs(msg_id: str, first: Invoice, second: Invoice) -> bytes:
    return camt054_file(
        "no_bank_references_v08.xml",
        msg_id=msg_id,
        total="1562.50",
        amount_1="1250.00",
        amount_2="312.50",
        payer_1="Alice Konsult AB",
        payer_2="Bergman Bygg HB",
        ocr_1=first.ocr_reference,
        ocr_2=second.ocr_reference,
    )


def test_two_payments_with_the_same_end_to_end_id_and_no_bank_reference_both_book(
    sek_invoice: Callable[[str], Invoice],
) -> None:
    first, second = sek_invoice("1000"), sek_invoice("250")

    report = import_bank_file(_no_refs("NOREF-1", first, second), filename="a.xml", by=SYSTEM)

    assert (report.matched, report.skipped) == (2, 0)
    assert _fresh(first).status == _fresh(second).status == Invoice.Status.PAID


def test_two_files_that_both_number_their_first_entry_1_both_book(
    sek_invoice: Callable[[str], Invoice],
) -> None:
    monday = (sek_invoice("1000"), sek_invoice("250"))
    tuesday = (sek_invoice("1000"), sek_invoice("250"))
    import_bank_file(_no_refs("NOREF-MON", *monday), filename="mon.xml", by=SYSTEM)

    report = import_bank_file(_no_refs("NOREF-TUE", *tuesday), filename="tue.xml", by=SYSTEM)

    assert (report.matched, report.skipped) == (2, 0)
    assert Payment.objects.count() == 4
    assert {_fresh(i).status for i in (*monday, *tuesday)} == {Invoice.Status.PAID}


def test_the_same_file_imported_twice_or_sent_again_books_once(
    sek_invoice: Callable[[str], Invoice],
) -> None:
    first, second = sek_invoice("1000"), sek_invoice("250")
    content = _no_refs("NOREF-2", first, second)
    import_bank_file(content, filename="a.xml", by=SYSTEM)

    again = import_bank_file(content, filename="a-again.xml", by=SYSTEM)
    # The bank's own re-send: the same message, other bytes (indentation).
    resent = import_bank_file(
        content.replace(b"\n        ", b"\n  "), filename="a-resent.xml", by=SYSTEM
    )

    assert again.already_imported
    assert (resent.matched, resent.skipped) == (0, 2)
    assert Payment.objects.count() == 2


# --- 4. batch sums -------------------------------------------------------------------


def test_a_batch_that_does_not_add_up_books_nothing(
    sek_invoice: Callable[[str], Invoice],
) -> None:
    good, summed_1, summed_2, counted = (sek_invoice("100") for _ in range(4))
    content = camt054_file(
        "batch_sums_v02.xml",
        msg_id="BG-SUMS-1",
        ocr_good=good.ocr_reference,
        ocr_sum_1=summed_1.ocr_reference,
        ocr_sum_2=summed_2.ocr_reference,
        ocr_count=counted.ocr_reference,
    )

    report = import_bank_file(content, filename="sums.xml", by=SYSTEM)

    assert (report.matched, report.review) == (1, 3)
    assert _fresh(good).status == Invoice.Status.PAID
    for unpaid in (summed_1, summed_2, counted):
        assert _fresh(unpaid).amount_paid == 0
        assert _line_of(unpaid).reason == "batch_mismatch"
    detail = _line_of(summed_1).detail
    assert "Ntry[2]/NtryDtls/Btch/TtlAmt says 35000 SEK" in detail
    assert "Ntry[2]/Amt is 35000 SEK" in detail and "nothing of it is booked" in detail
    assert "Ntry[3]/NtryDtls/Btch/NbOfTxs says 2, the batch lists 1" in _line_of(counted).detail
