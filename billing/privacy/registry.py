"""How apps billing must not import add their part to an export and an erasure.

Payments (cards, payments) registers its functions here when it starts
(``payments.privacy``); billing calls whatever is registered, in order, inside the
erasure's transaction. Billing never imports payments (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ExportSection = Callable[[Any], dict[str, Any]]
"""customer -> {section name: JSON-able data} for the customer's export."""
ErasureStep = Callable[..., dict[str, int]]
"""(customer, *, by, pseudonym) -> {what: how many}; runs in the erasure's transaction."""
RetentionStep = Callable[..., dict[str, int]]
"""(*, by, now) -> {what: how many}; the owner's part of the scheduled retention."""
InvoiceDeletionStep = Callable[..., dict[str, int]]
"""(invoice_ids, *, by) -> {what: how many}: remove the owner's rows that protect these
invoices (past their retention) from deletion; runs in the deletion's transaction."""

_export_sections: dict[str, ExportSection] = {}
_erasure_steps: dict[str, ErasureStep] = {}
_retention_steps: dict[str, RetentionStep] = {}
_invoice_deletion_steps: dict[str, InvoiceDeletionStep] = {}


def register_export_section(name: str, section: ExportSection) -> None:
    _export_sections[name] = section


def register_erasure_step(name: str, step: ErasureStep) -> None:
    _erasure_steps[name] = step


def register_retention_step(name: str, step: RetentionStep) -> None:
    _retention_steps[name] = step


def register_invoice_deletion_step(name: str, step: InvoiceDeletionStep) -> None:
    _invoice_deletion_steps[name] = step


def export_sections() -> dict[str, ExportSection]:
    return dict(_export_sections)


def erasure_steps() -> dict[str, ErasureStep]:
    return dict(_erasure_steps)


def retention_steps() -> dict[str, RetentionStep]:
    return dict(_retention_steps)


def invoice_deletion_steps() -> dict[str, InvoiceDeletionStep]:
    return dict(_invoice_deletion_steps)
