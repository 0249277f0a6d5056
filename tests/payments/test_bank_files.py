"""camt.054 import: matching by OCR and amount, the review list, bad files, re-imports."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit import SYSTEM
from billing.models import Customer, Invoice
from payments.exceptions import BankFileError, InvalidPayment
from payments.models import BankFile, BankLine, Payment
from payments.reconciliation.camt054 import sample_camt054
from payments.reconciliation.review import apply_bank_line, dismiss_bank_line
from payments.reconciliation.services import import_bank_file
from security.models import User
from tests.factories import audit_events, line

pytestmark = pytest.mark.django_db

CAMT = b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.054.001.02'>"


@pytest.fixture
def two_invoices(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> tuple[Invoice, Invoice]:
    """Two open invoices of Alice's: 1,000.00 SEK and 250.00 SEK."""
    return (
        make_open_invoice(alice_company, [line("Licence", "1", "800.00")]),
        make_open_invoice(alice_company, [line("Support", "1", "200.00")]),
    )


def test_a_batch_entry_pays_each_invoice_matched_by_ocr_and_amount(
    two_invoices: tuple[Invoice, Invoice],
) -> None:
    big, small = two_invoices
    content = sample_camt054(
        [
            {"amount": "1000.00", "reference": big.ocr_reference, "debtor": "Alice Konsult AB"},
            {"amount": "250.00", "reference": small.ocr_reference},
        ]
    )

    report = import_bank_file(content, filename="bg.xml", by=SYSTEM)

    assert (report.total, report.matched, report.review) == (2, 2, 0)
    for invoice in two_invoices:
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID
    payment = Payment.objects.get(invoice=big)
    assert (payment.method, payment.status) == ("bank_transfer", "succeeded")
    assert payment.bank_line is not None
    assert payment.bank_line.debtor_name == "Alice Konsult AB"
    assert audit_events("payment.bank_transfer_recorded", payment)
    event = audit_events("bank_file.imported")[0]
    assert event.details["matched"] == 2
    assert event.details["matched_amount"] == {"SEK": 125_000}


def test_mismatches_go_to_the_review_list_and_good_lines_are_recorded(
    two_invoices: tuple[Invoice, Invoice], bob_company: Customer, make_open_invoice: Callable
) -> None:
    big, small = two_invoices
    euro = make_open_invoice(bob_company)
    content = sample_camt054(
        [
            {"amount": "1000.00", "reference": big.ocr_reference},  # good
            {"amount": "100.00", "reference": small.ocr_reference},  # partial
            {"amount": "10.00", "reference": "9999999999999"},  # unknown reference
            {"amount": "10.00", "reference": ""},  # no reference
            {"amount": "10.00", "reference": euro.ocr_reference},  # SEK for an EUR invoice
            {"amount": "12.345", "reference": small.ocr_reference},  # malformed amount
        ],
        batch=False,  # each its own entry: a malformed line sends only its own to review
    )

    report = import_bank_file(content, filename="mixed.xml", by=SYSTEM)

    assert (report.matched, report.review) == (1, 5)
    reasons = dict(BankLine.objects.values_list("position", "reason"))
    assert reasons == {
        1: "",
        2: "amount_mismatch",
        3: "unknown_reference",
        4: "no_reference",
        5: "currency_mismatch",
        6: "invalid",
    }
    assert "Ntry[6]/NtryDtls/TxDtls[1]/Amt" in report.problems[-1]
    small.refresh_from_db()
    assert small.amount_paid == 0


def test_importing_the_same_file_twice_records_nothing_twice(
    two_invoices: tuple[Invoice, Invoice],
) -> None:
    big, _ = two_invoices
    content = sample_camt054([{"amount": "400.00", "reference": big.ocr_reference}])
    import_bank_file(content, filename="a.xml", by=SYSTEM)

    again = import_bank_file(content, filename="a-copy.xml", by=SYSTEM)

    assert again.already_imported
    assert BankFile.objects.count() == 1 and BankLine.objects.count() == 1
    assert len(audit_events("bank_file.imported")) == 1


def test_a_line_repeated_in_another_file_is_skipped(two_invoices: tuple[Invoice, Invoice]) -> None:
    big, small = two_invoices
    first = sample_camt054(
        [{"amount": "1000.00", "reference": big.ocr_reference, "ref": "BANK-1"}],
        message_id="DAY-1",
    )
    second = sample_camt054(
        [
            {"amount": "1000.00", "reference": big.ocr_reference, "ref": "BANK-1"},
            {"amount": "250.00", "reference": small.ocr_reference, "ref": "BANK-2"},
        ],
        message_id="DAY-1",  # the bank's corrected re-send of the same notification
        booking_date="2026-11-27",
    )
    import_bank_file(first, filename="day1.xml", by=SYSTEM)

    report = import_bank_file(second, filename="day1-v2.xml", by=SYSTEM)

    assert (report.matched, report.skipped) == (1, 1)
    assert Payment.objects.filter(invoice=big).count() == 1


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (CAMT + b"<BkToCstmrDbtCdtNtfctn>\n<GrpHdr></Document>", "line 2"),
        (b"<Invoice xmlns='urn:oasis'/>", "Document"),
        (
            b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x 'boom'>]>"
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.054.001.02'>&x;</Document>",
            "Document",
        ),
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.054.001.02'>"
            b"<BkToCstmrDbtCdtNtfctn><Ntfctn/></BkToCstmrDbtCdtNtfctn></Document>",
            "GrpHdr/MsgId",
        ),
        (
            sample_camt054([{"amount": "1.00", "reference": "1"}]).replace(
                b"<CdtDbtInd>CRDT</CdtDbtInd>", b"<CdtDbtInd>X</CdtDbtInd>"
            ),
            "Ntry[1]/CdtDbtInd",
        ),
        (b"   ", "file"),
        *(  # a DTD hidden in another encoding, with or without a byte-order mark
            (
                (
                    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY x "boom">]>'
                    "<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.054.001.02'>&x;"
                    "</Document>"
                ).encode(encoding),
                "Document",
            )
            for encoding in ("utf-16", "utf-16-le", "utf-32")
        ),
    ],
)
def test_a_malformed_file_is_refused_by_name_and_records_nothing(
    content: bytes, named: str
) -> None:
    with pytest.raises(BankFileError) as caught:
        import_bank_file(content, filename="bad.xml", by=SYSTEM)

    assert named in caught.value.field
    assert not BankFile.objects.exists() and not BankLine.objects.exists()


def test_an_operator_applies_a_partial_transfer_and_dismisses_another(
    two_invoices: tuple[Invoice, Invoice], clerk: User
) -> None:
    _, small = two_invoices
    content = sample_camt054(
        [
            {"amount": "100.00", "reference": small.ocr_reference},
            {"amount": "5.00", "reference": "123"},
        ]
    )
    import_bank_file(content, filename="p.xml", by=SYSTEM)
    partial, stray = BankLine.objects.order_by("position")

    payment = apply_bank_line(partial, invoice=small, by=clerk)
    dismiss_bank_line(stray, reason="sent back to the payer", by=clerk)

    small.refresh_from_db()
    assert small.amount_due == 15_000
    assert payment.amount == 10_000
    assert audit_events("bank_line.applied", partial)[0].actor_id == str(clerk.pk)
    assert audit_events("bank_line.dismissed", stray)
    with pytest.raises(InvalidPayment):
        apply_bank_line(partial, invoice=small, by=clerk)


def test_the_import_command_reports_progress_and_a_summary(
    two_invoices: tuple[Invoice, Invoice], tmp_path: Path
) -> None:
    big, _ = two_invoices
    path = tmp_path / "camt054.xml"
    path.write_bytes(
        sample_camt054(
            [
                {"amount": "1000.00", "reference": big.ocr_reference},
                {"amount": "1.00", "reference": "42"},
            ]
        )
    )
    out = StringIO()

    call_command("import_camt054", str(path), stdout=out)
    call_command("import_camt054", str(path), stdout=out)

    text = out.getvalue()
    assert "2/2 lines" in text
    assert "2 line(s): 1 matched (1,000.00 SEK), 0 reversed, 1 to review" in text
    assert "already imported; nothing recorded" in text


def test_the_import_command_names_the_fault_of_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(CAMT + b"<GrpHdr>")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_camt054", str(path), stderr=err)
    assert "not well-formed XML (line 1" in err.getvalue()
