"""Read ISO 20022 camt.054 (Bank-to-Customer Debit/Credit Notification) files.

Swedish banks send camt.054.001.02 for incoming payments: one ``Ntry`` per
booking, often a batch with many ``TxDtls`` (each with its own amount), and the
OCR reference as a structured creditor reference::

    RmtInf/Strd/CdtrRefInf/Tp/CdOrPrtry/Cd = SCOR
    RmtInf/Strd/CdtrRefInf/Ref             = the OCR number

The file is untrusted: a DTD or entity declaration is refused before parsing
and the parser reads the bytes as UTF-8 whatever the file declares (so nothing
can hide a DTD in another encoding; no entities, no external references). It is
streamed with the C parser and each transaction is dropped once read, so a
batch entry of 100,000 transactions is never held whole. A file that is not
camt.054 at all raises ``BankFileError`` naming the line or element; a single
bad transaction becomes a ``BankCredit`` with ``error`` set (the import lists it
for review and goes on).
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError, XMLParser, iterparse

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


class _Paths:
    """Namespaced ``find`` paths for one camt.054 namespace (built once per file)."""

    def __init__(self, namespace: str) -> None:
        def path(*names: str) -> str:
            return "/".join(f"{{{namespace}}}{name}" for name in names)

        self.path = path
        self.ntry, self.ntry_dtls, self.tx_dtls = path("Ntry"), path("NtryDtls"), path("TxDtls")
        self.grp_hdr, self.msg_id, self.ntfctn = path("GrpHdr"), path("MsgId"), path("Ntfctn")
        self.ind, self.amt = path("CdtDbtInd"), path("Amt")
        self.entry_refs = (path("AcctSvcrRef"), path("NtryRef"))
        self.dates = (path("BookgDt", "Dt"), path("BookgDt", "DtTm"))
        self.tx_refs = (path("Refs", "AcctSvcrRef"), path("Refs", "EndToEndId"))
        self.tx_amt = path("AmtDtls", "TxAmt", "Amt")
        self.strd = path("RmtInf", "Strd")
        self.ref = path("CdtrRefInf", "Ref")
        self.ref_kinds = (
            path("CdtrRefInf", "Tp", "CdOrPrtry", "Cd"),
            path("CdtrRefInf", "Tp", "CdOrPrtry", "Prtry"),
        )
        self.debtors = (path("RltdPties", "Dbtr", "Nm"), path("RltdPties", "Dbtr", "Pty", "Nm"))


def _text(element: Element | None, *paths: str) -> str:
    """The stripped text of the first of ``paths`` found under ``element`` that has text."""
    if element is None:
        return ""
    for path in paths:
        found = element.findtext(path)
        if found and found.strip():
            return found.strip()
    return ""


def _date(entry: Element, p: _Paths) -> datetime.date | None:
    raw = _text(entry, p.dates[0]) or _text(entry, p.dates[1])[:10]
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


def _reference(tx: Element | None, p: _Paths) -> tuple[str, str]:
    """The structured creditor reference (OCR) and its type (SCOR), else ('', '')."""
    if tx is None:
        return "", ""
    for strd in tx.iterfind(p.strd):
        ref = _text(strd, p.ref)
        if ref:
            return "".join(ref.split()), _text(strd, *p.ref_kinds)
    return "", ""


@dataclass
class _Entry:
    """What is known of the ``Ntry`` being read when its transactions end one by one."""

    number: int
    element: Element
    first_position: int
    indicator: str = ""
    reference: str = ""
    booking_date: datetime.date | None = None
    details: int = 0
    # Transactions without an amount of their own: the entry's amount applies
    # only if the entry turns out to hold just that one (decided at its end).
    no_amount: list[tuple[int, Element]] = field(default_factory=list)


def _start_details(entry: _Entry, p: _Paths) -> None:
    """At the entry's first transaction (its header elements are read by then)."""
    entry.indicator = _text(entry.element, p.ind)
    if entry.indicator not in ("CRDT", "DBIT"):
        raise BankFileError(
            f"Ntry[{entry.number}]/CdtDbtInd must be CRDT or DBIT, not {entry.indicator!r}",
            field=f"Ntry[{entry.number}]/CdtDbtInd",
        )
    entry.reference = _text(entry.element, *p.entry_refs)
    entry.booking_date = _date(entry.element, p)


def _credit(
    entry: _Entry,
    tx: Element | None,
    index: int,
    amount_element: Element | None,
    p: _Paths,
    file_hash: str,
) -> BankCredit:
    """One credit of ``entry``: transaction ``index`` (1-based), or the entry itself."""
    where = f"Ntry[{entry.number}]"
    tx_where = f"{where}/NtryDtls/TxDtls[{index}]" if tx is not None else where
    tx_ref = _text(tx, *p.tx_refs)
    if tx_ref and tx_ref.upper() != "NOTPROVIDED":
        line_key = f"{entry.reference or 'entry'}/{tx_ref}"
    else:
        # Without the bank's own id, the file and the position identify the line.
        line_key = f"file:{file_hash[:16]}/{entry.number}/{index}"
    reference, ref_type = _reference(tx, p)
    try:
        amount, currency = _amount(amount_element, tx_where)
        error = ""
    except ValueError as exc:
        amount, currency, error = 0, "", str(exc)
    return BankCredit(
        position=entry.first_position + index - 1,
        line_key=line_key[:200],
        amount=amount,
        currency=currency,
        reference=reference[:40],
        reference_type=ref_type,
        debtor_name=_text(tx, *p.debtors)[:140],
        booking_date=entry.booking_date,
        element=tx_where,
        error=error,
    )


def _refuse_unsafe(content: bytes) -> None:
    """The file is untrusted: no DTD (so no entities of any kind) and UTF-8 only.

    The parser is told the file is UTF-8 whatever it declares, so a DOCTYPE
    cannot hide behind another encoding, and this byte search is exact.
    """
    # UTF-16/32 (with or without a byte-order mark) has NUL bytes or is not UTF-8;
    # expat would honour their marks, so such a file is refused before parsing.
    try:
        content.decode("utf-8")
        if b"\x00" in content:
            raise UnicodeError
    except UnicodeError:
        raise BankFileError(
            "the file is not UTF-8 text (camt.054 files are UTF-8)", field="Document"
        ) from None
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise BankFileError(
            "the file uses a forbidden XML feature (a DTD or entity declaration)", field="Document"
        )


def parse_camt054(source: IO[bytes], *, file_hash: str = "") -> Camt054:
    """Read a camt.054 file; BankFileError (naming the line or element) if it is not one.

    Streamed with the C parser: each transaction (``TxDtls``) is read when it
    ends and then dropped, so a batch entry of 100,000 transactions never sits
    in memory whole.
    """
    content = source.read()
    _refuse_unsafe(content)
    # Parsing allocates millions of short-lived objects and creates no cycles:
    # the cyclic collector would only rescan what is alive (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(content, file_hash)
    finally:
        if collecting:
            gc.enable()


def _parse(content: bytes, file_hash: str) -> Camt054:
    message_id = ""
    credits: list[BankCredit] = []
    debits = 0
    entries = 0
    p: _Paths | None = None
    entry: _Entry | None = None
    # The open NtryDtls and Ntfctn elements, to drop what is read from them.
    details_parent: Element | None = None
    entries_parent: Element | None = None
    # The C parser, told the bytes are UTF-8 (checked safe by _refuse_unsafe above).
    parser = XMLParser(encoding="utf-8")  # noqa: S314
    events = iterparse(  # noqa: S314
        io.BytesIO(content), events=("start", "end"), parser=parser
    )
    try:
        for event, element in events:
            tag = element.tag
            if event == "start":
                if p is None:
                    namespace = tag[1:].split("}")[0] if tag[0] == "{" else ""
                    if _local(tag) != "Document" or not namespace.startswith(NAMESPACE_PREFIX):
                        raise BankFileError(
                            f"the root element is {tag!r}, not a camt.054 Document"
                            f" ({NAMESPACE_PREFIX}*)",
                            field="Document",
                        )
                    p = _Paths(namespace)
                elif tag == p.ntry:
                    entries += 1
                    entry = _Entry(entries, element, len(credits) + 1)
                elif tag == p.ntry_dtls:
                    details_parent = element
                elif tag == p.ntfctn:
                    entries_parent = element
                continue
            if p is None:  # an end before any start cannot happen; for the type checker
                continue
            if tag == p.tx_dtls and entry is not None:
                if entry.details == 0:
                    _start_details(entry, p)
                entry.details += 1
                if entry.indicator == "CRDT":
                    amount = element.find(p.tx_amt)
                    if amount is None:
                        amount = element.find(p.amt)  # camt.054.001.04 and later
                    if amount is None:
                        entry.no_amount.append((len(credits), element))
                    credits.append(_credit(entry, element, entry.details, amount, p, file_hash))
                if details_parent is not None and not entry.no_amount:
                    details_parent.remove(element)  # read: drop it (memory stays flat)
            elif tag == p.ntry and entry is not None:
                if entry.details == 0:
                    _start_details(entry, p)
                    if entry.indicator == "CRDT":  # no details: the entry is one credit
                        credits.append(_credit(entry, None, 1, element.find(p.amt), p, file_hash))
                if entry.indicator == "DBIT":
                    debits += 1
                elif entry.details == 1 and entry.no_amount:
                    # A lone transaction without an amount takes the entry's.
                    index, tx = entry.no_amount[0]
                    credits[index] = _credit(entry, tx, 1, element.find(p.amt), p, file_hash)
                element.clear()
                if entries_parent is not None:
                    entries_parent.remove(element)
                entry, details_parent = None, None
            elif tag == p.grp_hdr:
                message_id = _text(element, p.msg_id)
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise BankFileError(
            f"the file is not well-formed XML (line {line}, column {column})", field=f"line {line}"
        ) from None
    if p is None:
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
