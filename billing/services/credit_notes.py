"""Credit notes: full or partial, never beyond what is left on the invoice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import record
from billing import vat
from billing.exceptions import (
    CreditExceedsRemaining,
    InvalidInput,
    InvalidStatusTransition,
)
from billing.models import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
)
from billing.services._base import (
    Actor,
    Status,
    _lock_invoice,
    _transition,
)
from billing.services.drafts import _default_series
from billing.services.finalization import (
    _FROZEN_ON_FINALIZE,
    _freeze,
    _record_finalized,
    _seller_snapshot,
    _take_numbers,
)
from billing.services.settlement import _settle


@dataclass(frozen=True)
class CreditLine:
    """Credit ``quantity`` of invoice line ``line_id`` (None: all that is left of it)."""

    line_id: int
    quantity: Decimal | None = None


def _credited_so_far(invoice: Invoice) -> tuple[dict[int, tuple[Decimal, int]], dict[Any, int]]:
    """Per invoice line: (quantity, net) already credited; per VAT group: VAT credited."""
    per_line: dict[int, tuple[Decimal, int]] = {}
    rows = InvoiceLine.objects.filter(
        invoice__credited_invoice=invoice, invoice__status__in=[Status.OPEN, Status.PAID]
    ).values_list("credited_line_id", "quantity", "net_amount")
    for line_id, quantity, net in rows:
        qty, amount = per_line.get(line_id, (Decimal(0), 0))
        per_line[line_id] = (qty + quantity, amount + net)
    per_group: dict[Any, int] = {}
    notes = Invoice.objects.filter(
        credited_invoice=invoice, status__in=[Status.OPEN, Status.PAID]
    ).values_list("vat_breakdown", flat=True)
    for breakdown in notes:
        for group in breakdown:
            key = (group["category"], vat.normalize_rate(group["rate"]))
            per_group[key] = per_group.get(key, 0) + int(group["vat_amount"])
    return per_line, per_group


def issue_credit_note(
    invoice: Invoice,
    *,
    by: Actor,
    lines: Sequence[CreditLine] | None = None,
    reason: str = "",
) -> Invoice:
    """Issue and number a credit note for some or all that is left of an OPEN invoice.

    It never credits more of a line than is left, nor more than the amount due:
    an invoice never goes below zero. When the whole invoice is credited, the
    note takes the exact remainders, so the invoice ends at exactly zero.
    """
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.is_credit_note:
            raise InvalidStatusTransition("a credit note cannot be credited", field="kind")
        if locked.status not in (Status.OPEN, Status.UNCOLLECTIBLE):
            raise InvalidStatusTransition(
                f"{locked} is {locked.status}; only an open or uncollectible invoice"
                " can be credited (refund a paid one first)",
                field="status",
            )
        invoice_lines = {line.pk: line for line in locked.lines.all()}
        credited, credited_vat = _credited_so_far(locked)
        remaining = {
            pk: line.quantity - credited.get(pk, (Decimal(0), 0))[0]
            for pk, line in invoice_lines.items()
        }
        requested = (
            [CreditLine(pk) for pk, left in remaining.items() if left > 0]
            if lines is None
            else list(lines)
        )
        if not requested:
            raise CreditExceedsRemaining("nothing is left to credit", field="lines")
        note_lines: list[InvoiceLine] = []
        seen: set[int] = set()
        for position, item in enumerate(requested, 1):
            original = invoice_lines.get(item.line_id)
            if original is None or item.line_id in seen:
                raise InvalidInput(
                    f"line {item.line_id} is not a line of {locked} (or is named twice)",
                    field="lines",
                )
            seen.add(item.line_id)
            left = remaining[item.line_id]
            quantity = left if item.quantity is None else vat.check_quantity(item.quantity)
            if quantity > left or left <= 0:
                raise CreditExceedsRemaining(
                    f"line {position} ({original.description}): {quantity} is more than the"
                    f" {left} left to credit",
                    field="quantity",
                )
            net_left = original.net_amount - credited.get(item.line_id, (Decimal(0), 0))[1]
            net = (
                net_left
                if quantity == left
                else min(
                    net_left,
                    vat.line_net_amount(quantity, original.unit_price, locked.currency),
                )
            )
            note_lines.append(
                InvoiceLine(
                    position=position,
                    description=original.description,
                    quantity=quantity,
                    unit=original.unit,
                    unit_price=original.unit_price,
                    vat_category=original.vat_category,
                    vat_rate=original.vat_rate,
                    net_amount=net,
                    credited_line=original,
                )
            )
        overrides = _remainder_vat(locked, invoice_lines, remaining, note_lines, credited_vat)
        totals = vat.compute_totals(
            ((ln.vat_category, ln.vat_rate, ln.net_amount) for ln in note_lines),
            vat_overrides=overrides,
        )
        if totals.gross > locked.amount_due:
            raise CreditExceedsRemaining(
                f"the credit note ({locked.money(totals.gross)}) is more than the amount due"
                f" ({locked.due}); an invoice never goes below zero",
                field="credit_note",
            )
        seller = _seller_snapshot({line.vat_category for line in note_lines})
        note = Invoice(
            kind=InvoiceKind.CREDIT_NOTE,
            credited_invoice=locked,
            series=_default_series(InvoiceKind.CREDIT_NOTE),
            customer=locked.customer,
            currency=locked.currency,
            payment_terms_days=0,
            notes=reason,
        )
        note.save(force_insert=True)
        for line in note_lines:
            line.invoice = note
        InvoiceLine.objects.bulk_create(note_lines)
        _freeze(
            note,
            totals,
            number=_take_numbers(note.series),
            seller=seller,
            today=timezone.localdate(),
            now=timezone.now(),
        )
        # Nothing is due on a credit note: it is applied in full to the invoice now.
        _transition(note, Status.PAID)
        note.save(update_fields=_FROZEN_ON_FINALIZE)

        locked.amount_credited += totals.gross
        previous = _settle(locked)
        locked.save(update_fields=["amount_credited", "status", "updated_at"])
        _record_finalized(note, by)
        record(
            "invoice.credited",
            actor=by,
            obj=locked,
            credit_note=note.display_number,
            credit_note_id=note.pk,
            amount=totals.gross,
            currency=locked.currency,
            previous_status=previous,
            status=locked.status,
            reason=reason,
        )
    return note


def _remainder_vat(
    invoice: Invoice,
    invoice_lines: Mapping[int, InvoiceLine],
    remaining: Mapping[int, Decimal],
    note_lines: Sequence[InvoiceLine],
    credited_vat: Mapping[Any, int],
) -> dict[Any, int]:
    """VAT per group for a credit note: rounded like any document, but never more than the
    group's VAT left on the invoice, and exactly that when the group is now fully credited."""
    invoice_vat_by_group = {
        (group["category"], vat.normalize_rate(group["rate"])): int(group["vat_amount"])
        for group in invoice.vat_breakdown
    }
    note_totals = vat.compute_totals(
        (ln.vat_category, ln.vat_rate, ln.net_amount) for ln in note_lines
    )
    crediting = {ln.credited_line_id: ln.quantity for ln in note_lines}
    overrides: dict[Any, int] = {}
    for group in note_totals.breakdown:
        key = (group.category, group.rate)
        vat_left = invoice_vat_by_group[key] - credited_vat.get(key, 0)
        fully_credited = all(
            crediting.get(pk, Decimal(0)) >= remaining[pk]
            for pk, line in invoice_lines.items()
            if (line.vat_category, vat.normalize_rate(line.vat_rate)) == key
        )
        overrides[key] = vat_left if fully_credited else min(group.vat_amount, vat_left)
    return overrides
