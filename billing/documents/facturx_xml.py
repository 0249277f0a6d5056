"""The invoice as EN 16931 (Factur-X profile EN 16931) Cross Industry Invoice XML.

Built from the frozen invoice only (its snapshots, lines and VAT breakdown), so
the XML states exactly what the PDF shows. ``build_cii`` returns bytes that
``render.checked_facturx_xml`` checks against the Factur-X XSD and the official
EN 16931 schematron (``billing.documents.en16931``) before anything is signed.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from billing.models import Invoice, InvoiceLine
from billing.money import Money
from billing.selectors import invoice_vat_summary

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}

INVOICE_TYPE_CODE = "380"
CREDIT_NOTE_TYPE_CODE = "381"

# BT-120: the exemption reason text required for every category but S and Z.
_EXEMPTION_REASONS = {
    "E": "Exempt from VAT",
    "AE": "Reverse charge",
    "K": "Intra-community supply",
    "G": "Export outside the EU",
}
# UN/ECE rec 20 unit codes for the free-text units Tillit lines carry.
_UNIT_CODES = {
    "": "C62",
    "st": "H87",
    "pcs": "H87",
    "h": "HUR",
    "tim": "HUR",
    "hour": "HUR",
    "hours": "HUR",
    "day": "DAY",
    "dag": "DAY",
    "days": "DAY",
    "month": "MON",
    "mån": "MON",
    "km": "KMT",
    "kg": "KGM",
}


def _el(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    prefix, name = tag.split(":")
    node = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", **attrs)
    if text is not None:
        node.text = text
    return node


def _date(parent: Any, tag: str, value: datetime.date) -> None:
    _el(_el(parent, tag), "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _amount(invoice: Invoice, minor: int) -> str:
    return str(Money(minor, invoice.currency).as_decimal())


def _decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def _rate(value: Any) -> str:
    return _decimal(Decimal(str(value)))


def _unit_code(unit: str) -> str:
    return _UNIT_CODES.get(unit.strip().lower(), "C62")


def _party(parent: Any, tag: str, snap: dict[str, Any], *, seller: bool) -> None:
    party = _el(parent, tag)
    _el(party, "ram:Name", snap.get("legal_name" if seller else "name") or "-")
    legal_id = snap.get("organisation_number" if seller else "identity_number") or ""
    if legal_id and (seller or snap.get("kind") == "company"):
        legal = _el(party, "ram:SpecifiedLegalOrganization")
        _el(legal, "ram:ID", legal_id.replace("-", "").replace(" ", ""))
    address = _el(party, "ram:PostalTradeAddress")
    if snap.get("postal_code"):
        _el(address, "ram:PostcodeCode", snap["postal_code"])
    if snap.get("address_line1"):
        _el(address, "ram:LineOne", snap["address_line1"])
    if snap.get("address_line2"):
        _el(address, "ram:LineTwo", snap["address_line2"])
    if snap.get("city"):
        _el(address, "ram:CityName", snap["city"])
    _el(address, "ram:CountryID", snap.get("country") or "SE")
    if snap.get("email"):
        uri = _el(party, "ram:URIUniversalCommunication")
        _el(uri, "ram:URIID", snap["email"], schemeID="EM")
    vat_id = snap.get("vat_number" if seller else "vat_id") or ""
    if vat_id:
        registration = _el(party, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", vat_id.replace(" ", ""), schemeID="VA")


def _line(parent: Any, invoice: Invoice, line: InvoiceLine, number: int) -> None:
    item = _el(parent, "ram:IncludedSupplyChainTradeLineItem")
    _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(number))
    _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    price = _el(agreement, "ram:NetPriceProductTradePrice")
    _el(price, "ram:ChargeAmount", _decimal(line.unit_price))
    delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(delivery, "ram:BilledQuantity", _decimal(line.quantity), unitCode=_unit_code(line.unit))
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", line.vat_category)
    _el(tax, "ram:RateApplicablePercent", _rate(line.vat_rate))
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(invoice, line.net_amount))


def build_cii(invoice: Invoice) -> bytes:
    """The finalized invoice or credit note as EN 16931 CII XML (UTF-8 bytes)."""
    seller: dict[str, Any] = invoice.seller_snapshot
    buyer: dict[str, Any] = invoice.buyer_snapshot
    issue_date = invoice.issue_date or datetime.date.today()
    lines = sorted(invoice.lines.all(), key=lambda ln: (ln.position, ln.pk))
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)

    context = _el(root, "rsm:ExchangedDocumentContext")
    guideline = _el(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _el(guideline, "ram:ID", "urn:cen.eu:en16931:2017")

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.display_number)
    _el(
        document,
        "ram:TypeCode",
        CREDIT_NOTE_TYPE_CODE if invoice.is_credit_note else INVOICE_TYPE_CODE,
    )
    _date(document, "ram:IssueDateTime", issue_date)
    if invoice.notes:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", invoice.notes)
    if seller.get("f_skatt_text"):
        note = _el(document, "ram:IncludedNote")
        _el(note, "ram:Content", seller["f_skatt_text"])
        _el(note, "ram:SubjectCode", "REG")  # BT-33, seller additional legal information

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for number, line in enumerate(lines, 1):
        _line(transaction, invoice, line, number)

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", seller, seller=True)
    _party(agreement, "ram:BuyerTradeParty", buyer, seller=False)

    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    categories = {line.vat_category for line in lines}
    if "K" in categories or "G" in categories:
        ship_to = _el(delivery, "ram:ShipToTradeParty")
        _el(_el(ship_to, "ram:PostalTradeAddress"), "ram:CountryID", buyer.get("country") or "SE")
    event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", issue_date)

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    if invoice.ocr_reference:
        _el(settlement, "ram:PaymentReference", invoice.ocr_reference)
    _el(settlement, "ram:InvoiceCurrencyCode", invoice.currency)
    if not invoice.is_credit_note:
        if seller.get("iban"):
            means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
            # CII-SR-467: every payment means carries the same code: 30, credit transfer.
            _el(means, "ram:TypeCode", "30")
            account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
            _el(account, "ram:IBANID", seller["iban"].replace(" ", ""))
            if seller.get("bic"):
                bank = _el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
                _el(bank, "ram:BICID", seller["bic"])
        if seller.get("bankgiro"):
            means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
            _el(means, "ram:TypeCode", "30")
            _el(means, "ram:Information", "Bankgiro")
            account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
            _el(account, "ram:ProprietaryID", seller["bankgiro"])
    for group in invoice_vat_summary(invoice):
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", _amount(invoice, group.vat_amount))
        _el(tax, "ram:TypeCode", "VAT")
        if group.category in _EXEMPTION_REASONS:
            _el(tax, "ram:ExemptionReason", _EXEMPTION_REASONS[group.category])
        _el(tax, "ram:BasisAmount", _amount(invoice, group.taxable_amount))
        _el(tax, "ram:CategoryCode", group.category)
        _el(tax, "ram:RateApplicablePercent", _rate(group.rate))
    if invoice.is_credit_note:
        # BT-20: a credit note is applied in full to the invoice it credits when it is
        # issued (never beyond that invoice's amount due), so the seller owes nothing back.
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        credited = invoice.credited_invoice
        _el(
            terms,
            "ram:Description",
            f"Settled against invoice {credited.display_number}; nothing is due."
            if credited is not None
            else "Nothing is due.",
        )
    elif invoice.due_date:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        _date(terms, "ram:DueDateDateTime", invoice.due_date)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(invoice, invoice.net_total))
    _el(summation, "ram:TaxBasisTotalAmount", _amount(invoice, invoice.net_total))
    _el(
        summation,
        "ram:TaxTotalAmount",
        _amount(invoice, invoice.vat_total),
        currencyID=invoice.currency,
    )
    _el(summation, "ram:GrandTotalAmount", _amount(invoice, invoice.gross_total))
    if invoice.is_credit_note:
        # BT-113 and BT-115 (BR-CO-16: due = total - paid): the credit is settled by being
        # set off against the credited invoice, so what the seller owes back is zero.
        _el(summation, "ram:TotalPrepaidAmount", _amount(invoice, invoice.gross_total))
        _el(summation, "ram:DuePayableAmount", _amount(invoice, 0))
    else:
        _el(summation, "ram:DuePayableAmount", _amount(invoice, invoice.gross_total))
    if invoice.is_credit_note and invoice.credited_invoice is not None:
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", invoice.credited_invoice.display_number)
        if invoice.credited_invoice.issue_date:
            formatted = _el(referenced, "ram:FormattedIssueDateTime")
            _el(
                formatted,
                "qdt:DateTimeString",
                invoice.credited_invoice.issue_date.strftime("%Y%m%d"),
                format="102",
            )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
