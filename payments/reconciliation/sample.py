"""Sample camt.054.001.02 files, as Swedish banks send incoming payments (tests, bench)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape


def sample_camt054(
    credits: list[dict[str, Any]],
    *,
    message_id: str = "TILLIT-SAMPLE-1",
    booking_date: str = "2026-11-27",
    batch: bool = True,
) -> bytes:
    """A camt.054.001.02 file for tests and the demo.

    ``credits``: dicts with ``amount`` (Decimal or str, major units), optional
    ``currency`` (SEK), ``reference`` (OCR), ``debtor`` and ``ref`` (the bank's
    id of the transaction, ``Refs/AcctSvcrRef``; by default the message id and the
    transaction's number). ``batch``: one entry holding every transaction (as
    Bankgirot batches arrive, with its ``Btch`` summary) or one entry per credit.
    """

    def tx(i: int, c: dict[str, Any]) -> str:
        currency = c.get("currency", "SEK")
        ref = escape(str(c.get("reference", "")))
        remittance = (
            "<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
            f"<Ref>{ref}</Ref></CdtrRefInf></Strd></RmtInf>"
            if ref
            else "<RmtInf><Ustrd>no reference</Ustrd></RmtInf>"
        )
        bank_ref = escape(str(c.get("ref", f"{message_id}-{i}")))
        return (
            f"<TxDtls><Refs><AcctSvcrRef>{bank_ref}</AcctSvcrRef></Refs>"
            f'<AmtDtls><TxAmt><Amt Ccy="{currency}">{c["amount"]}</Amt></TxAmt></AmtDtls>'
            f"<RltdPties><Dbtr><Nm>{escape(str(c.get('debtor', 'Payer')))}</Nm></Dbtr></RltdPties>"
            f"{remittance}</TxDtls>"
        )

    def entry(n: int, items: list[tuple[int, dict[str, Any]]]) -> str:
        total = sum(Decimal(str(c["amount"])) for _, c in items)
        currency = items[0][1].get("currency", "SEK") if items else "SEK"
        return (
            f'<Ntry><NtryRef>{n}</NtryRef><Amt Ccy="{currency}">{total}</Amt>'
            "<CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{booking_date}</Dt></BookgDt><ValDt><Dt>{booking_date}</Dt></ValDt>"
            f"<AcctSvcrRef>{escape(message_id)}-{n}</AcctSvcrRef>"
            "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly>"
            "</Domn></BkTxCd><NtryDtls>"
            f"<Btch><NbOfTxs>{len(items)}</NbOfTxs>"
            f'<TtlAmt Ccy="{currency}">{total}</TtlAmt><CdtDbtInd>CRDT</CdtDbtInd></Btch>'
            + "".join(tx(i, c) for i, c in items)
            + "</NtryDtls></Ntry>"
        )

    numbered = list(enumerate(credits, 1))
    entries = entry(1, numbered) if batch else "".join(entry(i, [(i, c)]) for i, c in numbered)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">'
        f"<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>{escape(message_id)}</MsgId>"
        f"<CreDtTm>{booking_date}T06:00:00</CreDtTm></GrpHdr>"
        f"<Ntfctn><Id>{escape(message_id)}-N</Id><CreDtTm>{booking_date}T06:00:00</CreDtTm>"
        "<Acct><Id><Othr><Id>50501055</Id><SchmeNm><Prtry>BGNR</Prtry></SchmeNm></Othr></Id>"
        "</Acct>"
        f"{entries}</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    )
    return body.encode("utf-8")
