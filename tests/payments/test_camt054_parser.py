"""The streaming camt.054 reader on its own: entries, batches, debits, missing amounts."""

from __future__ import annotations

import io

from payments.reconciliation.camt054 import parse_camt054, sample_camt054

NS = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"


def _file(entries: str) -> bytes:
    return (
        f"<Document xmlns='{NS}'><BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>M-1</MsgId></GrpHdr>"
        f"<Ntfctn>{entries}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


def _tx(ref: str, amount: str | None) -> str:
    amt = f"<AmtDtls><TxAmt><Amt Ccy='SEK'>{amount}</Amt></TxAmt></AmtDtls>" if amount else ""
    return (
        f"<TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>{amt}<RmtInf><Strd><CdtrRefInf>"
        f"<Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>{ref}9</Ref></CdtrRefInf></Strd>"
        "</RmtInf></TxDtls>"
    )


def _entry(ref: str, amount: str, indicator: str, details: str) -> str:
    dtls = f"<NtryDtls>{details}</NtryDtls>" if details else ""
    return (
        f"<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy='SEK'>{amount}</Amt>"
        f"<CdtDbtInd>{indicator}</CdtDbtInd><BookgDt><Dt>2026-11-27</Dt></BookgDt>"
        f"<AcctSvcrRef>{ref}</AcctSvcrRef>{dtls}</Ntry>"
    )


def test_entries_batches_debits_and_missing_amounts_are_read_as_a_bank_means_them() -> None:
    content = _file(
        _entry("E1", "30.00", "CRDT", _tx("A", "10.00") + _tx("B", "20.00"))  # a batch
        + _entry("E2", "99.00", "DBIT", _tx("C", "99.00"))  # money out: not a payment
        + _entry("E3", "5.00", "CRDT", _tx("D", None))  # a lone tx takes the entry's amount
        + _entry("E4", "7.00", "CRDT", _tx("E", "7.00") + _tx("F", None))  # no amount: invalid
        + _entry("E5", "3.00", "CRDT", "")  # no details: the entry is one credit
    )

    parsed = parse_camt054(io.BytesIO(content), file_hash="ab" * 32)

    assert parsed.message_id == "M-1" and parsed.debits_skipped == 1
    got = [(c.position, c.line_key, c.amount, c.reference, c.error[:30]) for c in parsed.credits]
    assert got == [
        (1, "E1/A", 1000, "A9", ""),
        (2, "E1/B", 2000, "B9", ""),
        (3, "E3/D", 500, "D9", ""),
        (4, "E4/E", 700, "E9", ""),
        (5, "E4/F", 0, "F9", "Ntry[4]/NtryDtls/TxDtls[2]: th"),
        (6, "file:abababababababab/5/1", 300, "", ""),
    ]
    assert parsed.credits[0].booking_date is not None
    assert parsed.credits[0].reference_type == "SCOR"


def test_a_batch_of_many_transactions_is_read_whole() -> None:
    credits = [{"amount": "1.00", "reference": str(n), "ref": f"R{n}"} for n in range(5000)]

    parsed = parse_camt054(io.BytesIO(sample_camt054(credits)), file_hash="cd" * 32)

    assert len(parsed.credits) == 5000
    assert parsed.credits[-1].line_key.endswith("/R4999")
    assert {c.amount for c in parsed.credits} == {100}


def test_an_amount_no_invoice_could_hold_is_a_bad_line_naming_its_element() -> None:
    # 10^20 SEK would overflow the bank line's integer column: listed, never recorded.
    content = _file(_entry("E1", "1.00", "CRDT", _tx("A", "1.00") + _tx("B", "1" + "0" * 20)))

    parsed = parse_camt054(io.BytesIO(content), file_hash="ef" * 32)

    good, bad = parsed.credits
    assert (good.amount, good.error) == (100, "")
    assert bad.amount == 0
    assert bad.error.startswith("Ntry[1]/NtryDtls/TxDtls[2]/Amt:")
