"""The tests' view of the EN 16931 rules: the production check (billing.documents.en16931),
every failed rule as "ID: text"."""

from __future__ import annotations

from billing.documents.en16931 import failed_rules


def failed_assertions(xml: bytes, *, rule_set: str = "en16931") -> list[str]:
    """Every failed EN 16931 rule as "ID: text" (empty when the invoice passes)."""
    return [str(failure) for failure in failed_rules(xml, rule_set=rule_set)]
