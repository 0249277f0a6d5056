"""Render a finalized invoice or credit note to PDF/A-3b with its Factur-X XML embedded.

WeasyPrint lays out ``templates/pdf/invoice.html`` (fonts from the machine,
nothing fetched from the network); the factur-x library checks our EN 16931
XML against its XSD and embeds it as ``factur-x.xml`` with the PDF/A-3 XMP
metadata. The result is unsigned: ``billing.documents.sign`` adds the signature
as an incremental update, so these bytes stay intact inside the signed file.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import facturx
import segno
import weasyprint
import weasyprint.urls
from django.template.loader import render_to_string

from billing.documents.exceptions import RenderError
from billing.documents.facturx_xml import build_cii
from billing.models import Invoice
from billing.money import Money
from billing.selectors import invoice_vat_summary

logger = logging.getLogger(__name__)

TEMPLATE = "pdf/invoice.html"
TEMPLATE_VERSION = "1"
"""Bump when templates/pdf/ changes: a re-render then makes a new, audited version."""

_LABELS = {
    "en": {
        "invoice": "Invoice",
        "credit_note": "Credit note",
        "number": "Number",
        "issue_date": "Invoice date",
        "due_date": "Due date",
        "ocr": "OCR reference",
        "credits": "Credits invoice",
        "seller": "From",
        "buyer": "Bill to",
        "org_no": "Org. no.",
        "vat_no": "VAT no.",
        "description": "Description",
        "quantity": "Qty",
        "unit": "Unit",
        "unit_price": "Unit price",
        "vat": "VAT",
        "net": "Amount",
        "vat_rate": "VAT rate",
        "taxable": "Taxable",
        "net_total": "Net total",
        "vat_total": "VAT total",
        "to_pay": "Total to pay",
        "credited_total": "Total credited",
        "payment": "Payment",
        "page": "Page",
    },
    "sv": {
        "invoice": "Faktura",
        "credit_note": "Kreditfaktura",
        "number": "Fakturanummer",
        "issue_date": "Fakturadatum",
        "due_date": "Förfallodatum",
        "ocr": "OCR-nummer",
        "credits": "Krediterar faktura",
        "seller": "Från",
        "buyer": "Fakturamottagare",
        "org_no": "Org.nr",
        "vat_no": "Momsreg.nr",
        "description": "Beskrivning",
        "quantity": "Antal",
        "unit": "Enhet",
        "unit_price": "À-pris",
        "vat": "Moms",
        "net": "Belopp",
        "vat_rate": "Momssats",
        "taxable": "Underlag",
        "net_total": "Summa exkl. moms",
        "vat_total": "Moms",
        "to_pay": "Att betala",
        "credited_total": "Krediterat belopp",
        "payment": "Betalning",
        "page": "Sida",
    },
}

_CATEGORY_LABELS = {
    "Z": "0 %",
    "E": "Exempt",
    "AE": "Reverse charge",
    "K": "Intra-EU",
    "G": "Export",
}


def _number(value: Decimal, language: str) -> str:
    text = format(value.normalize(), "f")
    return text.replace(".", ",") if language == "sv" else text


def payment_qr_payload(invoice: Invoice) -> str | None:
    """The payment QR content: Swedish UsingQR for bankgiro in SEK, EPC (SEPA) for EUR."""
    seller = invoice.seller_snapshot
    if invoice.is_credit_note or invoice.amount_due <= 0:
        return None
    amount = Money(invoice.amount_due, invoice.currency).as_decimal()
    if invoice.currency == "SEK" and seller.get("bankgiro"):
        fields = {
            "uqr": 1,
            "tp": 1,
            "nme": seller.get("legal_name", "")[:70],
            "cc": seller.get("country", "SE"),
            "cid": seller.get("organisation_number", ""),
            "iref": invoice.ocr_reference,
            "idt": invoice.issue_date.strftime("%Y%m%d") if invoice.issue_date else "",
            "ddt": invoice.due_date.strftime("%Y%m%d") if invoice.due_date else "",
            "pt": "BG",
            "acc": seller["bankgiro"],
        }
        # The amount is a JSON number written from the Decimal, never through a float.
        return json.dumps(fields, ensure_ascii=False)[:-1] + f', "due": {amount}}}'
    if invoice.currency == "EUR" and seller.get("iban"):
        return "\n".join(
            [
                "BCD",
                "002",
                "1",
                "SCT",
                seller.get("bic", ""),
                seller.get("legal_name", "")[:70],
                seller["iban"].replace(" ", ""),
                f"EUR{amount}",
                "",
                invoice.ocr_reference,
                "",
            ]
        )
    return None


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """Everything the PDF template prints, formatted for the buyer's language."""
    language = "sv" if invoice.buyer_snapshot.get("language") == "sv" else "en"
    labels = _LABELS[language]

    def money(minor: int) -> str:
        return Money(minor, invoice.currency).format(language)

    lines = [
        {
            "description": line.description,
            "quantity": _number(line.quantity, language),
            "unit": line.unit,
            "unit_price": _number(line.unit_price, language),
            "vat": f"{_number(line.vat_rate, language)} %",
            "net": money(line.net_amount),
        }
        for line in sorted(invoice.lines.all(), key=lambda ln: (ln.position, ln.pk))
    ]
    vat_groups = [
        {
            "label": _CATEGORY_LABELS.get(group.category)
            or f"{_number(Decimal(str(group.rate)), language)} %",
            "taxable": money(group.taxable_amount),
            "vat": money(group.vat_amount),
        }
        for group in invoice_vat_summary(invoice)
    ]
    qr = payment_qr_payload(invoice)
    return {
        "invoice": invoice,
        "credited": invoice.credited_invoice if invoice.is_credit_note else None,
        "seller": invoice.seller_snapshot,
        "buyer": invoice.buyer_snapshot,
        "language": language,
        "labels": labels,
        "title": labels["credit_note" if invoice.is_credit_note else "invoice"],
        "lines": lines,
        "vat_groups": vat_groups,
        "totals": {
            "net": money(invoice.net_total),
            "vat": money(invoice.vat_total),
            "gross": money(invoice.gross_total),
        },
        "qr_data_uri": segno.make(qr, error="m").svg_data_uri(scale=4) if qr else None,
    }


def render_html(invoice: Invoice) -> str:
    return render_to_string(TEMPLATE, invoice_context(invoice))


# The template may load data: URIs only (the QR code): an invoice never reaches the network.
_FETCHER = weasyprint.urls.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def html_to_pdf(html: str) -> bytes:
    """PDF/A-3b bytes of the HTML (WeasyPrint)."""
    document = weasyprint.HTML(string=html, url_fetcher=_FETCHER)
    pdf = document.write_pdf(pdf_variant="pdf/a-3b", uncompressed_pdf=False)
    assert pdf is not None
    return pdf


def embed_facturx(pdf: bytes, xml: bytes, invoice: Invoice) -> bytes:
    """Embed the EN 16931 XML as Factur-X (XSD checked by factur-x; failure raises)."""
    seller = invoice.seller_snapshot
    metadata = {
        "author": seller.get("legal_name", ""),
        "keywords": "Factur-X, EN 16931",
        "title": f"{seller.get('legal_name', '')}: {invoice}",
        "subject": f"{invoice} {invoice.issue_date}",
    }
    try:
        result = facturx.generate_from_binary(
            pdf,
            xml,
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            pdf_metadata=metadata,
            lang=invoice.buyer_snapshot.get("language") or "en",
        )
    except Exception as exc:  # factur-x raises bare Exception for XSD failures
        logger.warning("Factur-X embedding failed for invoice %s", invoice.pk)
        raise RenderError(f"the Factur-X XML was refused: {exc}", field="facturx") from exc
    return bytes(result)


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The unsigned PDF/A-3b of a finalized invoice or credit note, Factur-X inside."""
    if invoice.is_draft:
        raise RenderError(f"{invoice} is a draft: only finalized invoices are rendered")
    return embed_facturx(html_to_pdf(render_html(invoice)), build_cii(invoice), invoice)
