"""Rendering: PDF/A-3b with every required field and EN 16931 Factur-X XML inside."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from billing import services as billing_services
from billing.documents import render
from billing.documents.exceptions import RenderError
from billing.documents.facturx_xml import build_cii
from billing.models import Customer, Invoice
from security.models import User
from tests.billing.documents.schematron import failed_assertions
from tests.factories import line

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _xml(pdf: bytes) -> bytes:
    _name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert xml
    return bytes(xml)


def _one(root: etree._Element, path: str) -> str:
    values = root.xpath(path, namespaces=NS)
    assert len(values) == 1, path
    return str(values[0])


@pytest.mark.django_db
def test_rendered_invoice_shows_every_required_field(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    invoice = make_open_invoice(alice_company)

    text = _text(render.render_invoice_pdf(invoice))

    flat = " ".join(text.split())
    for expected in [
        "Faktura",
        invoice.display_number,
        "Tillit Demo AB",
        "556036-0793",
        "SE556036079301",
        "Godkänd för F-skatt",
        "Alice Konsult AB",
        "SE556677889901",
        "Consulting",
        "Travel",
        "25 %",
        "6 %",
        str(invoice.due_date),
        invoice.ocr_reference,
        "5050-1055",
        "SE4550000000058398257466",
        invoice.gross.format("sv"),
        "Sida 1 / 1",
    ]:
        assert " ".join(expected.split()) in flat, expected


@pytest.mark.django_db
def test_facturx_xml_passes_the_xsd_and_every_en16931_rule_and_states_the_totals(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    invoice = make_open_invoice(alice_company)

    xml = _xml(render.render_invoice_pdf(invoice))

    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert failed_assertions(xml) == []
    root = etree.fromstring(xml)
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert _one(root, "//rsm:ExchangedDocument/ram:TypeCode/text()") == "380"
    assert _one(root, "//rsm:ExchangedDocument/ram:ID/text()") == invoice.display_number
    assert Decimal(_one(root, summation + "ram:GrandTotalAmount/text()")) == (
        invoice.gross.as_decimal()
    )
    assert Decimal(_one(root, summation + "ram:TaxTotalAmount/text()")) == invoice.vat.as_decimal()
    assert Decimal(_one(root, summation + "ram:TaxBasisTotalAmount/text()")) == (
        invoice.net.as_decimal()
    )
    assert _one(root, "//ram:PaymentReference/text()") == invoice.ocr_reference


@pytest.mark.django_db
def test_the_schematron_catches_a_broken_invoice(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    xml = build_cii(make_open_invoice(alice_company))
    broken = xml.replace(b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>1")

    assert any(rule.startswith("BR-CO-15") for rule in failed_assertions(broken))


@pytest.mark.django_db
def test_intra_eu_and_reverse_charge_invoices_pass_the_en16931_rules(
    make_open_invoice: Callable[..., Invoice], bob_company: Customer
) -> None:
    invoice = make_open_invoice(
        bob_company,
        [
            line("Machine", "2", "500.00", vat_category="K", vat_rate="0"),
            line("Install", "3", "80.00", vat_category="AE", vat_rate="0", unit="h"),
        ],
    )

    assert failed_assertions(build_cii(invoice)) == []


@pytest.mark.django_db
def test_a_credit_note_is_type_381_and_names_the_credited_invoice(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company)
    note = billing_services.issue_credit_note(invoice, by=clerk, reason="Wrong hours")

    pdf = render.render_invoice_pdf(note)

    xml = _xml(pdf)
    root = etree.fromstring(xml)
    assert _one(root, "//rsm:ExchangedDocument/ram:TypeCode/text()") == "381"
    assert _one(root, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()") == (
        invoice.display_number
    )
    assert failed_assertions(xml) == []
    assert "Kreditfaktura" in _text(pdf)


@pytest.mark.django_db
def test_a_draft_is_not_rendered(
    make_draft_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    with pytest.raises(RenderError) as error:
        render.render_invoice_pdf(make_draft_invoice(alice_company))
    assert error.value.field == "invoice"


@pytest.mark.django_db
def test_the_swedish_payment_qr_states_bankgiro_ocr_and_exact_amount(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    invoice = make_open_invoice(alice_company)

    payload = json.loads(render.payment_qr_payload(invoice) or "", parse_float=Decimal)

    assert payload["acc"] == "5050-1055"
    assert payload["iref"] == invoice.ocr_reference
    assert payload["due"] == invoice.gross.as_decimal()


@pytest.mark.django_db
def test_each_lines_figures_stand_in_columns_under_the_header(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    invoice = make_open_invoice(
        alice_company,
        [
            line("Consulting", "3.5", "1250.00", unit="h"),
            line("Licence", "1", "1234567.50", unit="månad"),
            line("Screws", "1000", "0.25", vat_rate="12", unit="st"),
        ],
    )

    context = render.invoice_context(invoice)
    rows = [context["figures_head"], *(ln["figures"] for ln in context["lines"])]
    # One width for all, each value at its column's edge: the right edge of a number,
    # the left edge of the unit (a monospaced font turns characters into positions).
    assert len({len(row) for row in rows}) == 1
    head = {name: render._LABELS["sv"][name] for name in render._FIGURES}
    cells = [head, *context["lines"]]
    unit_at = {row.index(cell["unit"]) for row, cell in zip(rows, cells, strict=True)}
    quantity_ends = {
        row.index(cell["quantity"]) + len(cell["quantity"])
        for row, cell in zip(rows, cells, strict=True)
    }
    price_ends = {
        row.index(cell["unit_price"], max(unit_at)) + len(cell["unit_price"])
        for row, cell in zip(rows, cells, strict=True)
    }
    assert len(unit_at) == len(quantity_ends) == len(price_ends) == 1
    assert all(row.endswith(cell["net"]) for row, cell in zip(rows, cells, strict=True))
    assert len(rows[0]) <= context["figures_width"] in render._FIGURES_WIDTHS
    flat = " ".join(_text(render.render_invoice_pdf(invoice)).split())
    assert "3,5 h 1 250,00 25 % 4 375,00 SEK" in flat
    assert "1 månad 1 234 567,50 25 % 1 234 567,50 SEK" in flat
    assert "1 000 st 0,25 12 % 250,00 SEK" in flat


@pytest.mark.django_db
def test_the_longest_figures_a_line_can_have_fit_the_widest_column(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> None:
    # The largest quantity the draft services accept, with 4 decimals, the longest
    # unit, and a unit price that keeps the invoice within billing.money.MAX_MINOR_UNITS.
    invoice = make_open_invoice(
        alice_company, [line("Everything", "9999999999.9999", "700.0001", unit="u" * 20)]
    )
    note = billing_services.issue_credit_note(invoice, by=clerk, reason="All of it")

    for document in (invoice, note):
        context = render.invoice_context(document)
        assert len(context["figures_head"]) <= context["figures_width"]
        flat = " ".join(_text(render.render_invoice_pdf(document)).split())
        assert "9 999 999 999,9999 uuuuuuuuuuuuuuuuuuuu 700,0001 25 %" in flat


def test_the_template_has_a_column_width_for_every_figures_width() -> None:
    template = (Path(render.__file__).parents[2] / "templates" / render.TEMPLATE).read_text()
    declared = {int(n) for n in re.findall(r"col\.figures-(\d+) \{ width: ", template)}
    assert declared == set(render._FIGURES_WIDTHS)


@pytest.mark.django_db
def test_a_long_invoice_runs_over_several_numbered_pages(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    invoice = make_open_invoice(
        alice_company, [line(f"Item {n}", "1", "10.00") for n in range(1, 81)]
    )

    pdf = render.render_invoice_pdf(invoice)

    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert pages >= 2
    assert f"Sida {pages} / {pages}" in _text(pdf)


@pytest.mark.django_db
def test_the_pdf_declares_pdfa3b_and_factur_x_in_one_xmp_packet_and_attaches_the_xml_as_data(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    reader = PdfReader(io.BytesIO(render.render_invoice_pdf(make_open_invoice(alice_company))))

    root: Any = reader.trailer["/Root"]
    xmp = etree.fromstring(root["/Metadata"].get_object().get_data())
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    assert len(xmp.findall(f"{rdf}RDF")) == 1

    def values(name: str) -> list[str]:
        found = [d.get(name) for d in xmp.iter(f"{rdf}Description") if d.get(name)]
        found += [e.text or "" for e in xmp.iter(name)]
        return found

    assert values("{http://www.aiim.org/pdfa/ns/id/}part") == ["3"]
    assert values("{http://www.aiim.org/pdfa/ns/id/}conformance") == ["B"]
    fx = "{urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#}"
    assert values(f"{fx}ConformanceLevel") == ["EN 16931"]
    assert values(f"{fx}DocumentFileName") == ["factur-x.xml"]
    [filespec] = [f.get_object() for f in root["/AF"]]
    assert filespec["/UF"] == "factur-x.xml"
    assert filespec["/AFRelationship"] == "/Data"
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"


def test_every_element_of_the_pdf_template_has_its_display_in_our_user_agent_stylesheet() -> None:
    from django.conf import settings

    template = Path(settings.BASE_DIR, "templates", render.TEMPLATE).read_text(encoding="utf-8")
    tags = set(re.findall(r"<([a-z][a-z0-9]*)", template))
    rules = re.sub(r"/\*.*?\*/", "", render.USER_AGENT_CSS.read_text(encoding="utf-8"), flags=re.S)
    displayed = {
        tag
        for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", rules)
        if "display" in body
        for tag in re.findall(r"[a-z][a-z0-9]*", selector)
    }

    inline = {"strong", "b", "em", "span", "br", "img"}  # display: inline is the default
    assert tags - displayed - inline == set()


def test_the_pdf_template_styles_only_through_its_style_element() -> None:
    # render.py cascades the <style> element's rules as the user's origin (parsed once,
    # cached): equivalent to the author's only while nothing else styles the document.
    from django.conf import settings

    template = Path(settings.BASE_DIR, "templates", render.TEMPLATE).read_text(encoding="utf-8")

    assert not re.search(r"\sstyle\s*=", template)
    assert "!important" not in template
    assert "<link" not in template


def _tree(root: Any) -> list[tuple[str, dict[str, str], str, str]]:
    """Every element with its attributes, text and tail; whitespace-only text as ""
    (the HTML5 parser moves some of it: it collapses away in either place)."""
    return [
        (
            el.tag,
            dict(el.attrib),
            (el.text or "").strip() and el.text,
            (el.tail or "").strip() and el.tail,
        )
        for el in root.iter()
    ]


@pytest.mark.django_db
def test_the_template_parses_as_xml_into_the_html5_parsers_tree(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    bob_company: Customer,
    clerk: User,
) -> None:
    # render.py reads the template's output with expat (fast) instead of WeasyPrint's
    # HTML5 parser: it must be well-formed XML and mean the same document.
    import tinyhtml5

    invoice = make_open_invoice(
        alice_company,
        [line('Consulting <b>&amp; "more"</b>', "2", "10.00", unit="h"), line("Travel")],
        notes="Thanks!\nSecond line & more",
    )
    documents = [
        invoice,
        billing_services.issue_credit_note(invoice, by=clerk, reason="Wrong hours"),
        make_open_invoice(
            bob_company, [line("Machine", "2", "500.00", vat_category="K", vat_rate="0")]
        ),
    ]
    for document in documents:
        html = render.render_html(document)
        root = render._parsed_as_xml(html)
        assert root is not None, document
        assert _tree(root) == _tree(tinyhtml5.parse(html, namespace_html_elements=False))


@pytest.mark.django_db
def test_html_xml_cannot_hold_goes_to_the_html5_parser(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    # The services refuse control characters in what an invoice prints; an older
    # invoice (or a later template) that still holds one is read by the HTML5 parser.
    invoice = make_open_invoice(alice_company)
    html = render.render_html(invoice).replace("Consulting", "Consulting\x0bpart two", 1)

    assert render._parsed_as_xml(html) is None
    assert invoice.display_number in _text(render.html_to_pdf(html))


def test_a_document_that_declares_entities_is_not_read_as_xml() -> None:
    declared = '<!DOCTYPE html [<!ENTITY a "aaaaaaaaaa">]><html><body>&a;&a;</body></html>'
    external = '<!DOCTYPE html [<!ENTITY e SYSTEM "file:///etc/passwd">]><html>&e;</html>'

    assert render._parsed_as_xml(declared) is None
    assert render._parsed_as_xml(external) is None


@pytest.mark.django_db
def test_renders_in_another_thread_match_this_threads(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    # Each thread keeps its own font configuration (Pango's font maps are not thread-safe).
    from concurrent.futures import ThreadPoolExecutor

    html = render.render_html(make_open_invoice(alice_company))

    here = _text(render.html_to_pdf(html))
    with ThreadPoolExecutor(max_workers=2) as pool:
        there = [_text(pdf) for pdf in pool.map(render.html_to_pdf, [html, html])]

    assert there == [here, here]


@pytest.mark.django_db
def test_a_forked_worker_renders_with_its_own_font_configuration(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    import multiprocessing

    html = render.render_html(make_open_invoice(alice_company))
    here = _text(render.html_to_pdf(html))  # this process now holds a font configuration
    parents = render._font_config()

    with multiprocessing.get_context("fork").Pool(1) as pool:
        there, same = pool.apply(_render_in_child, (html, id(parents)))

    assert _text(there) == here
    assert not same


def _render_in_child(html: str, parents_config: int) -> tuple[bytes, bool]:
    pdf = render.html_to_pdf(html)
    return pdf, id(render._font_config()) == parents_config


@pytest.mark.django_db
def test_a_render_frees_its_layout_before_it_returns(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    # The layout is one big cyclic garbage: the render collects it while it is still
    # young, so no later full collection in unrelated code has to (decision 15).
    import gc

    invoice = make_open_invoice(alice_company, lines=[line(f"Item {n}") for n in range(40)])
    html = render.render_html(invoice)
    render.html_to_pdf(html)  # the first render fills the per-process caches
    gc.collect()

    render.html_to_pdf(html)

    assert gc.collect() < 100
