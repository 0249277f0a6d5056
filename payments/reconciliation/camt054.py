"""Read ISO 20022 camt.054 (Bank-to-Customer Debit/Credit Notification) files.

Swedish banks send camt.054.001.02 for incoming payments: one ``Ntry`` per
booking, often a batch with many ``TxDtls`` (each with its own amount), and the
OCR reference as a structured creditor reference::

    RmtInf/Strd/CdtrRefInf/Tp/CdOrPrtry/Cd = SCOR
    RmtInf/Strd/CdtrRefInf/Ref             = the OCR number

The file is untrusted: it is parsed with defusedxml (no DTDs, no entities, no
external references) and streamed (``iterparse``), so a large file is read one
entry at a time. A file that is not camt.054 at all raises ``BankFileError``
naming the line or element; a single bad transaction becomes a ``BankCredit``
with ``error`` set (the import lists it for review and goes on).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from billing.exceptions import BillingError
from billing.money import to_minor_units
from payments.exceptions import BankFileError

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.054.001."


@dataclass(frozen=True)
class BankCredit:
    """One incoming amount of a camt.054 file (a transaction detail, or an entry without)."""

    position: int
    line_key: str
    amount: int
    currency: str
    reference: str
    reference_type: str
    debtor_name: str
    booking_date: datetime.date | None
    element: str
    error: str = ""


@dataclass(frozen=True)
class Camt054:
    """The file's header and its credits (debits are skipped: they are not payments to us)."""

    message_id: str
    credits: list[BankCredit]
    debits_skipped: int


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _children(element: Element | None, name: str) -> list[Element]:
    return [] if element is None else [c for c in element if _local(c.tag) == name]


def _text(element: Element | None, *path: str) -> str:
    found = _child(element, *path)
    return (found.text or "").strip() if found is not None else ""


def _date(entry: Element) -> datetime.date | None:
    raw = _text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")[:10]
    try:
        return datetime.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _amount(element: Element | None, where: str) -> tuple[int, str]:
    """(minor units, currency) of an ``Amt Ccy="SEK"`` element; ValueError names the element."""
    if element is None:
        raise ValueError(f"{where}: the Amt element is missing")
    currency = (element.get("Ccy") or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"{where}/Amt: the Ccy attribute is missing or not a currency code")
    try:
        value = Decimal((element.text or "").strip())
        if not value.is_finite() or value <= 0:
            raise InvalidOperation
        return to_minor_units(value, currency), currency
    except (InvalidOperation, BillingError):
        raise ValueError(
            f"{where}/Amt: {(element.text or '').strip()[:40]!r} is not a positive amount in"
            f" {currency}"
        ) from None


def _reference(tx: Element | None) -> tuple[str, str]:
    """The structured creditor reference (OCR) and its type (SCOR), else ('', '')."""
    for strd in _children(_child(tx, "RmtInf"), "Strd"):
        info = _child(strd, "CdtrRefInf")
        ref = _text(info, "Ref")
        if ref:
            kind = _text(info, "Tp", "CdOrPrtry", "Cd") or _text(info, "Tp", "CdOrPrtry", "Prtry")
            return "".join(ref.split()), kind
    return "", ""


def _credits_of_entry(
    entry: Element, entry_no: int, first_position: int, file_hash: str
) -> Iterator[BankCredit]:
    where = f"Ntry[{entry_no}]"
    entry_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
    booking_date = _date(entry)
    details: list[Element | None] = [
        tx for nd in _children(entry, "NtryDtls") for tx in _children(nd, "TxDtls")
    ]
    if not details:
        details = [None]  # an entry without transaction details is one credit
    for index, tx in enumerate(details, 1):
        tx_where = f"{where}/NtryDtls/TxDtls[{index}]" if tx is not None else where
        tx_ref = _text(tx, "Refs", "AcctSvcrRef") or _text(tx, "Refs", "EndToEndId")
        if tx_ref and tx_ref.upper() != "NOTPROVIDED":
            line_key = f"{entry_ref or 'entry'}/{tx_ref}"
        else:
            # Without the bank's own id, the file and the position identify the line.
            line_key = f"file:{file_hash[:16]}/{entry_no}/{index}"
        reference, ref_type = _reference(tx)
        debtor = _text(tx, "RltdPties", "Dbtr", "Nm") or _text(tx, "RltdPties", "Dbtr", "Pty", "Nm")
        # (Elements without children are falsy: compare with None, never use "or".)
        amount_element = _child(entry, "Amt") if tx is None else None
        if tx is not None:
            amount_element = _child(tx, "AmtDtls", "TxAmt", "Amt")
            if amount_element is None:
                amount_element = _child(tx, "Amt")  # camt.054.001.04 and later
            if amount_element is None and len(details) == 1:
                amount_element = _child(entry, "Amt")
        position = first_position + index - 1
        try:
            amount, currency = _amount(amount_element, tx_where)
        except ValueError as exc:
            yield BankCredit(
                position=position,
                line_key=line_key[:200],
                amount=0,
                currency="",
                reference=reference[:40],
                reference_type=ref_type,
                debtor_name=debtor[:140],
                booking_date=booking_date,
                element=tx_where,
                error=str(exc),
            )
            continue
        yield BankCredit(
            position=position,
            line_key=line_key[:200],
            amount=amount,
            currency=currency,
            reference=reference[:40],
            reference_type=ref_type,
            debtor_name=debtor[:140],
            booking_date=booking_date,
            element=tx_where,
        )


def parse_camt054(source: IO[bytes], *, file_hash: str = "") -> Camt054:
    """Read a camt.054 file; BankFileError (naming the line or element) if it is not one."""
    message_id = ""
    credits: list[BankCredit] = []
    debits = 0
    entries = 0
    root_checked = False
    stack: list[Element] = []
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                stack.append(element)
                if not root_checked:
                    root_checked = True
                    namespace = element.tag[1:].split("}")[0] if element.tag[0] == "{" else ""
                    if _local(element.tag) != "Document" or not namespace.startswith(
                        NAMESPACE_PREFIX
                    ):
                        raise BankFileError(
                            f"the root element is {element.tag!r}, not a camt.054 Document"
                            f" ({NAMESPACE_PREFIX}*)",
                            field="Document",
                        )
                continue
            stack.pop()
            name = _local(element.tag)
            if name == "MsgId" and stack and _local(stack[-1].tag) == "GrpHdr":
                message_id = (element.text or "").strip()
            elif name == "Ntry":
                entries += 1
                indicator = _text(element, "CdtDbtInd")
                if indicator not in ("CRDT", "DBIT"):
                    raise BankFileError(
                        f"Ntry[{entries}]/CdtDbtInd must be CRDT or DBIT, not {indicator!r}",
                        field=f"Ntry[{entries}]/CdtDbtInd",
                    )
                if indicator == "DBIT":
                    debits += 1
                else:
                    credits.extend(_credits_of_entry(element, entries, len(credits) + 1, file_hash))
                # Streaming: drop what is read, so memory stays flat for large files.
                element.clear()
                if stack:
                    stack[-1].remove(element)
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise BankFileError(
            f"the file is not well-formed XML (line {line}, column {column})", field=f"line {line}"
        ) from None
    except DefusedXmlException as exc:
        raise BankFileError(
            f"the file uses a forbidden XML feature ({type(exc).__name__})", field="Document"
        ) from None
    if not root_checked:
        raise BankFileError("the file is empty", field="Document")
    if not message_id:
        raise BankFileError("GrpHdr/MsgId is missing", field="GrpHdr/MsgId")
    if entries == 0:
        raise BankFileError("the file has no Ntry (entry) element", field="Ntfctn/Ntry")
    return Camt054(message_id=message_id, credits=credits, debits_skipped=debits)


def file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


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
    id of the transaction). ``batch``: one entry holding every transaction (as
    Bankgirot batches arrive) or one entry per credit.
    """
    from xml.sax.saxutils import escape

    def tx(i: int, c: dict[str, Any]) -> str:
        currency = c.get("currency", "SEK")
        ref = escape(str(c.get("reference", "")))
        remittance = (
            "<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
            f"<Ref>{ref}</Ref></CdtrRefInf></Strd></RmtInf>"
            if ref
            else "<RmtInf><Ustrd>no reference</Ustrd></RmtInf>"
        )
        return (
            f"<TxDtls><Refs><AcctSvcrRef>{escape(str(c.get('ref', f'TX{i:07d}')))}</AcctSvcrRef>"
            "</Refs>"
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
