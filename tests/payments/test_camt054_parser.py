"""The streaming camt.054 reader on its own: entries, batches, directions, statuses, sums,
amounts, identities."""

from __future__ import annotations

import io

import pytest

from payments.reconciliation.camt054 import parse_camt054, sample_camt054

NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"
ACCOUNT = "SE4550000000058398257466"


def _file(entries: str, *, message_id: str = "M-1") -> bytes:
    return (
        f"<Document xmlns='{NS}'><BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>{message_id}</MsgId>"
        f"</GrpHdr><Ntfctn><Id>N-1</Id><Acct><Id><IBAN>{ACCOUNT}</IBAN></Id></Acct>"
        f"{entries}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


def _tx(ref: str, amount: str | None) -> str:
    amt = f"<AmtDtls><TxAmt><Amt Ccy='SEK'>{amount}</Amt></TxAmt></AmtDtls>" if amount else ""
    return (
        f"<TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>{amt}<RmtInf><Strd><CdtrRefInf>"
        f"<Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{ref}9</Ref></CdtrRefInf></Strd>"
        "</RmtInf></TxDtls>"
    )


def _entry(ref: str, amount: str, indicator: str, details: str, status: str = "BOOK") -> str:
    dtls = f"<NtryDtls>{details}</NtryDtls>" if details else ""
    return (
        f"<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy='SEK'>{amount}</Amt>"
        f"<CdtDbtInd>{indicator}</CdtDbtInd><Sts>{status}</Sts>"
        f"<BookgDt><Dt>2026-11-27</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>{dtls}</Ntry>"
    )


def _parse(content: bytes) -> list[tuple[int, str, str, int, str, str]]:
    return [
        (line.position, line.line_key, line.kind, line.amount, line.reference, line.problem)
        for line in parse_camt054(io.BytesIO(content)).lines
    ]


def test_entries_batches_debits_and_missing_amounts_are_read_as_a_bank_means_them() -> None:
    content = _file(
        _entry("E1", "30.00", "CRDT", _tx("A", "10.00") + _tx("B", "20.00"))  # a batch
        + _entry("E2", "99.00", "DBIT", _tx("C", "99.00"))  # money out: listed
        + _entry("E3", "5.00", "CRDT", _tx("D", None))  # a lone tx takes the entry's amount
        + _entry("E4", "7.00", "CRDT", _tx("E", "7.00") + _tx("F", None))  # cannot be checked
        + _entry("E5", "3.00", "CRDT", "")  # no details: the entry is one credit
    )

    parsed = parse_camt054(io.BytesIO(content))

    assert parsed.message_id == "M-1"
    key = f"{ACCOUNT}|credit|"
    assert _parse(content) == [
        (1, key + "ref:A", "credit", 1000, "A9", ""),
        (2, key + "ref:B", "credit", 2000, "B9", ""),
        (3, f"{ACCOUNT}|debit|ref:C", "debit", 9900, "C9", ""),
        (4, key + "ref:D", "credit", 500, "D9", ""),
        (5, key + "ref:E", "credit", 700, "E9", "batch_mismatch"),
        (6, key + "ref:F", "credit", 0, "F9", "batch_mismatch"),
        (7, key + "entry:E5/1", "credit", 300, "", ""),
    ]
    lines = parsed.lines
    assert "TxDtls[2] has no amount" in lines[5].error
    assert lines[0].booking_date is not None and lines[0].reference_type == "SCOR"
    assert lines[0].bank_reference == "A" and lines[6].bank_reference == "E5"


def test_a_batch_of_many_transactions_is_read_whole() -> None:
    credits = [{"amount": "1.00", "reference": str(n), "ref": f"R{n}"} for n in range(5000)]

    lines = parse_camt054(io.BytesIO(sample_camt054(credits))).lines

    assert len(lines) == 5000
    assert lines[-1].line_key.endswith("|credit|ref:R4999")
    assert {line.amount for line in lines} == {100}
    assert not any(line.problem for line in lines)


@pytest.mark.parametrize(
    "text",
    [
        "1e999999999",  # an exponent (no xs:decimal has one): Decimal would take it
        "1" + "0" * 20,  # 21 digits: more than ISO 20022 allows, more than any invoice
        "NaN",
        "Infinity",
        "-5.00",
        "12,50",
        "1.123456",  # six decimals
        "",
        "0.00",
    ],
)
def test_an_amount_that_is_not_an_iso_20022_amount_is_a_bad_line_naming_its_element(
    text: str,
) -> None:
    content = _file(_entry("E1", "5.00", "CRDT", _tx("A", text or " ")))

    [line] = parse_camt054(io.BytesIO(content)).lines

    assert (line.amount, line.problem) == (0, "invalid")
    assert line.error.startswith("Ntry[1]/NtryDtls/TxDtls[1]/Amt:")


def test_an_unreadable_amount_in_a_batch_sends_the_whole_entry_to_review() -> None:
    content = _file(
        _entry("E1", "1.00", "CRDT", _tx("A", "1.00") + _tx("B", "1e999999999"))
        + _entry("E2", "2.00", "CRDT", _tx("C", "2.00"))
    )

    good, bad, other = parse_camt054(io.BytesIO(content)).lines

    assert (bad.problem, bad.error[:31]) == ("invalid", "Ntry[1]/NtryDtls/TxDtls[2]/Amt:")
    assert good.problem == "batch_mismatch" and "cannot be read" in good.error
    assert (other.problem, other.amount) == ("", 200)
