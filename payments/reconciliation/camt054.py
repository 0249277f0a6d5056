"""Read ISO 20022 camt.054 (Bank-to-Customer Debit/Credit Notification) files.

Swedish banks send camt.054.001.02 for incoming payments: one ``Ntry`` per
booking, often a batch with many ``TxDtls`` (each with its own amount), and the
OCR reference as a structured creditor reference::

    RmtInf/Strd/CdtrRefInf/Tp/CdOrPrtry/Cd = SCOR
    RmtInf/Strd/CdtrRefInf/Ref             = the OCR number

Every transaction of every entry becomes one ``BankTransaction``, whatever its
direction, so that nothing a bank reports is dropped:

* **status** (``Ntry/Sts``: ``<Sts>BOOK</Sts>`` up to version 001.07, ``<Sts><Cd>BOOK</Cd>
  </Sts>`` from 001.08): only ``BOOK`` moves money. ``PDNG``, ``INFO`` and ``FUTR`` are
  listed for information (the booked entry comes later, in its own file); any other
  status, or none, sends the entry to review.
* **direction** (``CdtDbtInd`` and ``RvslInd``): a credit; a debit (money out, listed);
  a *reversal* (``DBIT`` with ``RvslInd`` true: the bank takes back an earlier credit,
  e.g. a returned payment); a debit reversal (``CRDT`` with ``RvslInd`` true: money back
  from an earlier debit, never a payment of an invoice).
* **sums**: an entry's ``Amt`` must be the sum of its transactions, and a batch's
  ``Btch/NbOfTxs`` and ``Btch/TtlAmt`` must agree with the transactions listed under
  it. An entry that does not add up (or whose amounts cannot be read) goes to review
  whole, every line of it with the reason.
* **identity** (``line_key``): the bank's own unique references, in this order: the
  transaction's ``Refs/AcctSvcrRef``, its ``Refs/TxId``, the entry's ``AcctSvcrRef``
  with the transaction's position in the entry; where the bank gives none, the file's
  ``GrpHdr/MsgId`` with the entry's and the transaction's positions. ``EndToEndId`` is
  chosen by the payer (often the same text for many payments) and ``NtryRef`` is
  numbered per file: neither identifies a line. The key also holds the account, the
  direction and any status but ``BOOK`` (a pending entry and its later booking are two
  lines). The same file imported again gives the same keys; another file never does.

The file is untrusted: a DTD or entity declaration is refused before parsing
and the parser reads the bytes as UTF-8 whatever the file declares (so nothing
can hide a DTD in another encoding; no entities, no external references). It is
streamed with the C parser and each transaction is dropped once read, so a
batch entry of 100,000 transactions is never held whole. A file that is not
camt.054 at all raises ``BankFileError`` naming the line or element; a bad
transaction or entry becomes lines with ``problem`` set (the import lists them
for review and goes on).
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import hashlib
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO
from xml.etree.ElementTree import Element, ParseError, XMLParser, iterparse

from billing.exceptions import BillingError
from billing.money import to_minor_units
from payments.exceptions import BankFileError

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.054.001."

# What a line is (BankLine.Kind).
CREDIT, DEBIT, REVERSAL, DEBIT_REVERSAL = "credit", "debit", "reversal", "debit_reversal"
# Entry statuses (ExternalEntryStatus1Code): only BOOK moves money.
BOOKED = "BOOK"
NOT_BOOKED = frozenset({"PDNG", "INFO", "FUTR"})
# Why a line cannot be taken as it is (BankLine.Reason).
INVALID, BATCH_MISMATCH, UNKNOWN_STATUS = "invalid", "batch_mismatch", "unknown_status"

# ISO 20022 amounts (ActiveOrHistoricCurrencyAndAmount): an xs:decimal of at most 18
# digits, 5 after the point, never negative. No exponent, no sign but "+".
_AMOUNT = re.compile(r"\+?(\d*)(?:\.(\d*))?")
_NOT_PROVIDED = "NOTPROVIDED"


@dataclass(frozen=True)
class BankTransaction:
    """One transaction of a camt.054 file (a transaction detail, or an entry without)."""

    position: int
    line_key: str
    kind: str
    status: str
    amount: int
    currency: str
    reference: str
    reference_type: str
    debtor_name: str
    booking_date: datetime.date | None
    element: str
    bank_reference: str = ""
    transaction_id: str = ""
    end_to_end_id: str = ""
    return_reason: str = ""
    # Why the line goes to review (INVALID, BATCH_MISMATCH, UNKNOWN_STATUS), and in words.
    problem: str = ""
    error: str = ""

    @property
    def booked(self) -> bool:
        return self.status == BOOKED and not self.problem


@dataclass(frozen=True)
class Camt054:
    """The file's header and every one of its transactions, in file order."""

    message_id: str
    lines: list[BankTransaction]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


Path = tuple[str, ...]


class _Paths:
    """Namespaced tags and paths for one camt.054 namespace (built once per file).

    A path is a tuple of tags, followed one ``find`` at a time: ElementTree's C code
    answers a ``find`` of one tag itself, where a path with a "/" goes through its
    Python ``ElementPath`` (a third of the parse, measured on 100,000 transactions).
    """

    def __init__(self, namespace: str) -> None:
        def tag(name: str) -> str:
            return f"{{{namespace}}}{name}"

        def path(*names: str) -> Path:
            return tuple(tag(name) for name in names)

        self.ntry, self.ntry_dtls, self.tx_dtls = tag("Ntry"), tag("NtryDtls"), tag("TxDtls")
        self.grp_hdr, self.ntfctn, self.amt = tag("GrpHdr"), tag("Ntfctn"), tag("Amt")
        self.batch, self.rmt_inf, self.strd = tag("Btch"), tag("RmtInf"), tag("Strd")
        self.msg_id, self.ind, self.rvsl = path("MsgId"), path("CdtDbtInd"), path("RvslInd")
        self.status = (path("Sts", "Cd"), path("Sts"))
        self.status_proprietary = path("Sts", "Prtry")
        self.account = (path("Acct", "Id", "IBAN"), path("Acct", "Id", "Othr", "Id"))
        self.entry_ref = path("AcctSvcrRef")
        self.dates = (path("BookgDt", "Dt"), path("BookgDt", "DtTm"))
        self.tx_bank_ref, self.tx_id = path("Refs", "AcctSvcrRef"), path("Refs", "TxId")
        self.end_to_end = path("Refs", "EndToEndId")
        self.tx_amt = path("AmtDtls", "TxAmt", "Amt")
        self.batch_count, self.batch_total = path("NbOfTxs"), path("TtlAmt")
        self.return_reason = (path("RtrInf", "Rsn", "Cd"), path("RtrInf", "Rsn", "Prtry"))
        self.ref = path("CdtrRefInf", "Ref")
        self.ref_kinds = (
            path("CdtrRefInf", "Tp", "CdOrPrtry", "Cd"),
            path("CdtrRefInf", "Tp", "CdOrPrtry", "Prtry"),
        )
        self.debtors = (path("RltdPties", "Dbtr", "Nm"), path("RltdPties", "Dbtr", "Pty", "Nm"))


def _at(element: Element | None, path: Path) -> Element | None:
    """The first element at ``path`` under ``element`` (first child at each step)."""
    for tag in path:
        if element is None:
            return None
        element = element.find(tag)
    return element


def _text(element: Element | None, *paths: Path) -> str:
    """The stripped text of the first of ``paths`` found under ``element`` that has text."""
    for path in paths:
        found = _at(element, path)
        if found is not None and found.text and found.text.strip():
            return found.text.strip()
    return ""


def _bank_ref(element: Element | None, path: Path) -> str:
    value = _text(element, path)
    return "" if value.upper() == _NOT_PROVIDED else value[:35]


def _date(entry: Element, p: _Paths) -> datetime.date | None:
    raw = _text(entry, p.dates[0]) or _text(entry, p.dates[1])[:10]
    try:
        return datetime.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _amount(element: Element | None, where: str) -> tuple[int, str]:
    """(minor units, currency) of an ``Amt Ccy="SEK"`` element; ValueError names the element.

    The text must be an ISO 20022 amount (at most 18 digits, 5 of them decimals): an
    exponent (``1e999999999``), a sign, NaN or an amount no invoice could hold is a bad
    line, never an overflow that stops the import.
    """
    if element is None:
        raise ValueError(f"{where}: the Amt element is missing")
    currency = (element.get("Ccy") or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"{where}/Amt: the Ccy attribute is missing or not a currency code")
    text = (element.text or "").strip()
    shape = _AMOUNT.fullmatch(text)
    whole, decimals = (shape.group(1), shape.group(2) or "") if shape else ("", "")
    if (
        shape is None
        or not (whole or decimals)
        or len(whole) + len(decimals) > 18
        or len(decimals) > 5
    ):
        raise ValueError(
            f"{where}/Amt: {text[:40]!r} is not an ISO 20022 amount (digits, at most 5"
            " decimals and 18 digits in all)"
        )
    try:
        value = Decimal(f"{whole or 0}.{decimals or 0}")
        if value <= 0:
            raise ValueError
        return to_minor_units(value, currency), currency
    except (ValueError, ArithmeticError, BillingError):
        raise ValueError(
            f"{where}/Amt: {text[:40]!r} is not a positive amount in {currency}"
        ) from None


def _reference(tx: Element | None, p: _Paths) -> tuple[str, str]:
    """The structured creditor reference (OCR) and its type (SCOR), else ('', '')."""
    remittance = tx.find(p.rmt_inf) if tx is not None else None
    if remittance is None:
        return "", ""
    for strd in remittance.iterfind(p.strd):
        ref = _text(strd, p.ref)
        if ref:
            return "".join(ref.split()), _text(strd, *p.ref_kinds)
    return "", ""


@dataclass
class _Entry:
    """What is known of the ``Ntry`` being read while its transactions end one by one."""

    number: int
    element: Element
    account: str
    started: bool = False
    kind: str = ""
    status: str = ""
    status_problem: str = ""
    reference: str = ""
    booking_date: datetime.date | None = None
    amount: int = 0
    currency: str = ""
    amount_error: str = ""
    lines: list[BankTransaction] = field(default_factory=list)
    # Positions (in ``lines``) of transactions without an amount of their own: the
    # entry's amount applies only if the entry holds just that one (decided at its end).
    no_amount: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # The open NtryDtls: its transactions so far (count, and amounts by currency).
    details_count: int = 0
    details_sum: dict[str, int] = field(default_factory=dict)


def _start(entry: _Entry, p: _Paths) -> None:
    """At the entry's first transaction or its end (its header elements are read by then)."""
    entry.started = True
    where = f"Ntry[{entry.number}]"
    indicator = _text(entry.element, p.ind)
    if indicator not in ("CRDT", "DBIT"):
        raise BankFileError(
            f"{where}/CdtDbtInd must be CRDT or DBIT, not {indicator!r}",
            field=f"{where}/CdtDbtInd",
        )
    reversal = _text(entry.element, p.rvsl).lower() in ("true", "1")
    entry.kind = {
        ("CRDT", False): CREDIT,
        ("DBIT", False): DEBIT,
        ("DBIT", True): REVERSAL,
        ("CRDT", True): DEBIT_REVERSAL,
    }[(indicator, reversal)]
    entry.status = _text(entry.element, *p.status).upper()
    if not entry.status:
        proprietary = _text(entry.element, p.status_proprietary)
        entry.status = f"PRTRY:{proprietary}"[:35] if proprietary else ""
    if entry.status != BOOKED and entry.status not in NOT_BOOKED:
        entry.status_problem = (
            f"{where}/Sts is {entry.status!r}: only a booked entry (BOOK) moves money"
            if entry.status
            else f"{where}/Sts is missing: only a booked entry (BOOK) moves money"
        )
    entry.reference = _bank_ref(entry.element, p.entry_ref)
    entry.booking_date = _date(entry.element, p)
    try:
        entry.amount, entry.currency = _amount(entry.element.find(p.amt), where)
    except ValueError as exc:
        entry.amount_error = str(exc)


def _line_key(
    entry: _Entry, bank_reference: str, transaction_id: str, index: int, message_id: str
) -> str:
    """The line's identity: the bank's own unique reference, else the file's and positions."""
    if bank_reference:
        unique = f"ref:{bank_reference}"
    elif transaction_id:
        unique = f"txid:{transaction_id}"
    elif entry.reference:
        unique = f"entry:{entry.reference}/{index}"
    else:
        unique = f"msg:{message_id}/{entry.number}/{index}"
    status = "" if entry.status == BOOKED else f"{entry.status or 'none'}:"
    return f"{entry.account}|{entry.kind}|{status}{unique}"


def _transaction(
    entry: _Entry,
    tx: Element | None,
    index: int,
    amount_element: Element | None,
    p: _Paths,
    message_id: str,
    position: int,
) -> BankTransaction:
    """Transaction ``index`` (1-based) of ``entry``, or the entry itself when ``tx`` is None."""
    where = f"Ntry[{entry.number}]"
    tx_where = f"{where}/NtryDtls/TxDtls[{index}]" if tx is not None else where
    bank_reference = _bank_ref(tx, p.tx_bank_ref)
    transaction_id = _bank_ref(tx, p.tx_id)
    reference, ref_type = _reference(tx, p)
    error = ""
    amount, currency = 0, ""
    if amount_element is not None:
        try:
            amount, currency = _amount(amount_element, tx_where)
        except ValueError as exc:
            error = str(exc)
    indicator = _text(tx, p.ind)  # camt.054.001.04 and later: each transaction's own
    entry_indicator = "DBIT" if entry.kind in (DEBIT, REVERSAL) else "CRDT"
    if not error and indicator and indicator != entry_indicator:
        error = f"{tx_where}/CdtDbtInd is {indicator!r} in a {entry_indicator} entry"
    return BankTransaction(
        position=position,
        line_key=_line_key(entry, bank_reference, transaction_id, index, message_id)[:200],
        kind=entry.kind,
        status=entry.status[:35],
        amount=amount,
        currency=currency,
        reference=reference[:40],
        reference_type=ref_type,
        debtor_name=_text(tx, *p.debtors)[:140],
        booking_date=entry.booking_date,
        element=tx_where,
        bank_reference=bank_reference or entry.reference,
        transaction_id=transaction_id,
        end_to_end_id=_bank_ref(tx, p.end_to_end),
        return_reason=_text(tx, *p.return_reason)[:35],
        problem=INVALID if error else "",
        error=error,
    )


def _close_details(entry: _Entry, details: Element, p: _Paths) -> None:
    """At the end of an ``NtryDtls``: its ``Btch`` must agree with the transactions in it."""
    batch = details.find(p.batch)
    count, sums = entry.details_count, entry.details_sum
    entry.details_count, entry.details_sum = 0, {}
    if batch is None or count == 0:
        return  # a batch with no transactions listed is a summary: nothing to check
    where = f"Ntry[{entry.number}]/NtryDtls/Btch"
    stated = _text(batch, p.batch_count)
    if stated and stated != str(count):
        entry.problems.append(f"{where}/NbOfTxs says {stated}, the batch lists {count}")
    total = _at(batch, p.batch_total)
    if total is not None:
        try:
            amount, currency = _amount(total, where)
        except ValueError as exc:
            entry.problems.append(str(exc))
        else:
            if sums != {currency: amount}:
                listed = " + ".join(f"{v} {k}" for k, v in sorted(sums.items())) or "nothing"
                entry.problems.append(
                    f"{where}/TtlAmt says {amount} {currency} (minor units), the batch's"
                    f" transactions add up to {listed}"
                )


def _close_entry(entry: _Entry, p: _Paths, message_id: str, next_position: int) -> None:
    """At the end of a ``Ntry``: its lines, checked as a whole."""
    where = f"Ntry[{entry.number}]"
    if not entry.lines:  # no details: the entry is one transaction
        entry.lines.append(
            _transaction(entry, None, 1, entry.element.find(p.amt), p, message_id, next_position)
        )
    elif len(entry.lines) == 1 and entry.no_amount:
        # A lone transaction without an amount of its own takes the entry's.
        lone = entry.lines[0]
        if entry.amount_error:
            entry.lines[0] = dataclasses.replace(lone, problem=INVALID, error=entry.amount_error)
        else:
            entry.lines[0] = dataclasses.replace(lone, amount=entry.amount, currency=entry.currency)
    else:
        for index in entry.no_amount:
            entry.problems.append(
                f"{entry.lines[index].element} has no amount: the entry's total cannot be checked"
            )
        if entry.amount_error:
            entry.problems.append(entry.amount_error)
        elif not any(line.error for line in entry.lines):
            listed: dict[str, int] = {}
            for line in entry.lines:
                listed[line.currency] = listed.get(line.currency, 0) + line.amount
            if listed != {entry.currency: entry.amount}:
                entry.problems.append(
                    f"{where}/Amt is {entry.amount} {entry.currency} (minor units), its"
                    " transactions add up to "
                    + " + ".join(f"{v} {k}" for k, v in sorted(listed.items()))
                )
        else:
            entry.problems.append(f"{where}: a transaction's amount cannot be read")
    problem, detail = "", ""
    if entry.problems:
        problem, detail = BATCH_MISMATCH, "; ".join(entry.problems) + ": nothing of it is booked"
    elif entry.status_problem:
        problem, detail = UNKNOWN_STATUS, entry.status_problem
    if problem:
        entry.lines = [
            line
            if line.error and problem == BATCH_MISMATCH
            else dataclasses.replace(line, problem=problem, error=detail)
            for line in entry.lines
        ]


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


def parse_camt054(source: IO[bytes]) -> Camt054:
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
        return _parse(content)
    finally:
        if collecting:
            gc.enable()


def _parse(content: bytes) -> Camt054:
    message_id = ""
    lines: list[BankTransaction] = []
    entries = 0
    p: _Paths | None = None
    entry: _Entry | None = None
    account = ""
    # The open NtryDtls and Ntfctn elements, to drop what is read from them.
    details_parent: Element | None = None
    entries_parent: Element | None = None
    # A key the file gives twice (a bank repeating one reference on several
    # transactions) is made unique by the second one's position: no line is lost.
    keys: set[str] = set()
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
                    if entries_parent is not None and not account:
                        account = _text(entries_parent, *p.account)[:34]
                    entry = _Entry(entries, element, account)
                elif tag == p.ntry_dtls:
                    details_parent = element
                elif tag == p.ntfctn:
                    entries_parent, account = element, ""
                continue
            if p is None:  # an end before any start cannot happen; for the type checker
                continue
            if tag == p.tx_dtls and entry is not None:
                if not entry.started:
                    _start(entry, p)
                amount = _at(element, p.tx_amt)
                if amount is None:
                    amount = element.find(p.amt)  # camt.054.001.04 and later
                if amount is None:
                    entry.no_amount.append(len(entry.lines))
                index = len(entry.lines) + 1
                line = _transaction(
                    entry, element, index, amount, p, message_id, len(lines) + index
                )
                entry.lines.append(line)
                entry.details_count += 1
                if amount is not None:
                    entry.details_sum[line.currency] = (
                        entry.details_sum.get(line.currency, 0) + line.amount
                    )
                if details_parent is not None:
                    details_parent.remove(element)  # read: drop it (memory stays flat)
            elif tag == p.ntry_dtls and entry is not None:
                _close_details(entry, element, p)
                details_parent = None
            elif tag == p.ntry and entry is not None:
                if not entry.started:
                    _start(entry, p)
                _close_entry(entry, p, message_id, len(lines) + 1)
                for line in entry.lines:
                    if line.line_key in keys:
                        line = dataclasses.replace(
                            line, line_key=f"{line.line_key}@{line.position}"[:200]
                        )
                    keys.add(line.line_key)
                    lines.append(line)
                element.clear()
                if entries_parent is not None:
                    entries_parent.remove(element)
                entry = None
            elif tag == p.grp_hdr:
                message_id = _text(element, p.msg_id)
    except ParseError as exc:
        line_number, column = getattr(exc, "position", (0, 0))
        raise BankFileError(
            f"the file is not well-formed XML (line {line_number}, column {column})",
            field=f"line {line_number}",
        ) from None
    if p is None:
        raise BankFileError("the file is empty", field="Document")
    if not message_id:
        raise BankFileError("GrpHdr/MsgId is missing", field="GrpHdr/MsgId")
    if entries == 0:
        raise BankFileError("the file has no Ntry (entry) element", field="Ntfctn/Ntry")
    return Camt054(message_id=message_id, lines=lines)


def file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# The sample generator lives beside the parser it feeds (tests, benchmarks).
from payments.reconciliation.sample import sample_camt054  # noqa: E402

__all__ = [
    "BankTransaction",
    "Camt054",
    "file_sha256",
    "parse_camt054",
    "sample_camt054",
]
