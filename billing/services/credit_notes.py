"""Credit notes: full or partial, never beyond what is left on the invoice."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

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
from billing.money import Money, currency_exponent
from billing.services._base import (
    Actor,
    Status,
    _lock_invoice,
    _printable,
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
from billing.services.settlement import _refund_of, _settle
from billing.webhooks import emit_invoice


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
        locked = _check_creditable(_lock_invoice(invoice))
        note_lines, totals = _credit_by_lines(locked, lines)
        note, previous = _issue(locked, note_lines, totals, by=by, reason=reason)
        locked.save(update_fields=["amount_credited", "status", "updated_at"])
        _record_credited(locked, note, totals, by=by, previous=previous, reason=reason)
    return note


def issue_credit_note_for_amount(
    invoice: Invoice, *, amount: Money, by: Actor, reason: str = ""
) -> Invoice:
    """Issue and number a credit note of exactly ``amount`` (VAT included) on an OPEN or
    UNCOLLECTIBLE invoice: a price reduction spread over its VAT groups in proportion to
    what is left of each. Never more than the amount due (CreditExceedsRemaining naming
    ``amount``); all that is left gives the same note as crediting every line."""
    reason = _printable(reason.replace("\r\n", "\n").replace("\r", "\n"), "reason", lines=True)
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        minor = _credit_amount(locked, amount)
        note_lines, totals = _credit_for_amount(locked, minor, reason, refund=False)
        note, previous = _issue(locked, note_lines, totals, by=by, reason=reason)
        locked.save(update_fields=["amount_credited", "status", "updated_at"])
        _record_credited(locked, note, totals, by=by, previous=previous, reason=reason)
    return note


def _check_creditable(invoice: Invoice) -> Invoice:
    """The invoice, if a credit note may be issued on it: an invoice (not a credit note),
    OPEN or UNCOLLECTIBLE; else InvalidStatusTransition naming ``kind`` or ``status``."""
    if invoice.is_credit_note:
        raise InvalidStatusTransition("a credit note cannot be credited", field="kind")
    if invoice.status not in (Status.OPEN, Status.UNCOLLECTIBLE):
        raise InvalidStatusTransition(
            f"{invoice} is {invoice.get_status_display().lower()}; only an open or"
            " uncollectible invoice can be credited (refund a paid one with a credit note)",
            field="status",
        )
    return invoice


def _credit_amount(locked: Invoice, amount: Money) -> int:
    """``amount`` in minor units if an invoice (open or uncollectible) can take that credit."""
    _check_creditable(locked)
    if not isinstance(amount, Money) or amount.currency != locked.currency:
        raise InvalidInput(f"the credit must be in {locked.currency}", field="amount")
    if amount.amount <= 0:
        raise InvalidInput("a credit must be more than zero", field="amount")
    if amount.amount > locked.amount_due:
        raise CreditExceedsRemaining(
            f"{amount} is more than is left to credit on {locked} ({locked.due})",
            field="amount",
        )
    return amount.amount


def credit_note_quantities_left(invoice: Invoice) -> dict[int, Decimal]:
    """Per line of the invoice: the quantity not credited yet (reads only)."""
    credited, _vat = _credited_so_far(invoice)
    return {
        line.pk: line.quantity - credited.get(line.pk, (Decimal(0), 0))[0]
        for line in invoice.lines.all()
    }


@dataclass(frozen=True)
class CreditNotePreview:
    """What a credit note would be, before it is issued: the number it would take (unless
    another is issued first), its totals and lines. Nothing is written."""

    number: str
    totals: vat.Totals
    lines: list[InvoiceLine]


def preview_credit_note(
    invoice: Invoice,
    *,
    lines: Sequence[CreditLine] | None = None,
    amount: Money | None = None,
    reason: str = "",
    ahead: int = 0,
) -> CreditNotePreview:
    """The credit note ``issue_credit_note`` (``lines``, None: all that is left) or
    ``issue_credit_note_for_amount`` (``amount``) would issue now, checked as they check it
    (the same errors, naming the field); reads only. ``ahead``: how many credit notes will
    be issued before this one (a bulk credit names each note's number in turn)."""
    if ahead < 0:
        raise InvalidInput("ahead cannot be negative", field="ahead")
    if amount is not None:
        minor = _credit_amount(invoice, amount)
        note_lines, totals = _credit_for_amount(invoice, minor, reason, refund=False)
    else:
        note_lines, totals = _credit_by_lines(_check_creditable(invoice), lines)
        if totals.gross > invoice.amount_due:
            raise CreditExceedsRemaining(
                f"the credit note ({invoice.money(totals.gross)}) is more than the amount due"
                f" ({invoice.due})",
                field="quantity",
            )
    series = _default_series(InvoiceKind.CREDIT_NOTE)
    return CreditNotePreview(series.display_number(series.next_number + ahead), totals, note_lines)


def record_refund_with_credit_note(
    invoice: Invoice, *, amount: Money, reason: str, by: Actor, reference: str = ""
) -> Invoice:
    """A refund for goods returned or a price reduced: take the refunded amount off what
    was paid and issue a credit note for exactly that amount, in one transaction. The
    amount due does not move, so a PAID invoice stays PAID (never reopened); the credit
    note is signed and delivered like any invoice, and the customer gets a refund receipt.
    Returns the credit note.

    The note credits every line that is left when the refund takes all of it; otherwise
    it reduces the price, one line per VAT group, in proportion to what is left of each
    group (its VAT within what is left of the group's VAT). A refund never exceeds what
    was paid, and paid plus credited never exceeds the total, so there is always enough
    left to credit.
    """
    from billing.delivery.models import Delivery
    from billing.delivery.services import queue_delivery

    # The note prints the reason: line breaks as the documents write them, nothing else.
    reason = _printable(reason.replace("\r\n", "\n").replace("\r", "\n"), "reason", lines=True)
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        minor = _refund_of(locked, amount)
        if locked.status not in (Status.OPEN, Status.UNCOLLECTIBLE, Status.PAID):
            raise InvalidStatusTransition(
                f"{locked} is {locked.status}; it takes no refund", field="status"
            )
        previous_status = locked.status
        locked.amount_paid -= minor  # what the refund frees, the credit note takes
        note_lines, totals = _credit_for_amount(locked, minor, reason)
        note, _previous = _issue(locked, note_lines, totals, by=by, reason=reason)
        locked.save(update_fields=["amount_paid", "amount_credited", "status", "updated_at"])
        record(
            "invoice.refund_recorded",
            actor=by,
            obj=locked,
            amount=minor,
            currency=locked.currency,
            reference=reference,
            purpose="credit_note",
            credit_note=note.display_number,
            previous_status=previous_status,
            status=locked.status,
        )
        _record_credited(locked, note, totals, by=by, previous=previous_status, reason=reason)
        queue_delivery(locked, kind=Delivery.Kind.REFUND, by=by)
    return note


def _credit_by_lines(
    locked: Invoice, lines: Sequence[CreditLine] | None
) -> tuple[list[InvoiceLine], vat.Totals]:
    """The note's lines and totals for ``lines`` of the invoice (None: all that is left)."""
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
                f"line {position} ({original.description}): {quantity.normalize():f} is more"
                f" than the {max(left, Decimal(0)).normalize():f} left to credit",
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
    return note_lines, totals


def _credit_for_amount(
    locked: Invoice, gross: int, reason: str, *, refund: bool = True
) -> tuple[list[InvoiceLine], vat.Totals]:
    """The note's lines and totals for a credit of exactly ``gross`` (minor units); the
    lines read "Refund on invoice ..." (``refund``) or "Credit on invoice ..."."""
    if gross == locked.gross_total - locked.amount_credited:
        # All that is left: a note that mirrors the lines, when they come to exactly that.
        with contextlib.suppress(CreditExceedsRemaining):
            mirrored = _credit_by_lines(locked, None)
            if mirrored[1].gross == gross:
                return mirrored
    left = _groups_left(locked)
    total_left = sum(net + tax for net, tax in left.values())
    if gross > total_left:
        raise CreditExceedsRemaining(
            f"{locked.money(gross)} is more than is left to credit on {locked}"
            f" ({locked.money(total_left)})",
            field="credit_note",
        )
    shares = _apportion(gross, {group: net + tax for group, (net, tax) in left.items()})
    exponent = currency_exponent(locked.currency)
    with translation.override(locked.customer.language):
        lead = (
            _("Refund on invoice %(number)s") if refund else _("Credit on invoice %(number)s")
        ) % {"number": locked.display_number}
    # The reason on one printed line: its line breaks and tabs become spaces (the
    # payments service has refused any other control character before the refund).
    said = " ".join(reason.split())
    description = _printable(f"{lead}: {said}"[:500] if said else lead, "reason")
    note_lines: list[InvoiceLine] = []
    overrides: dict[Any, int] = {}
    for position, ((category, rate), share) in enumerate(
        ((group, share) for group, share in shares.items() if share > 0), 1
    ):
        net_left, vat_left = left[(category, rate)]
        # The VAT a gross amount holds, kept within what is left of the group's VAT and net.
        tax = vat.vat_included(share, rate)
        tax = min(max(tax, share - net_left), vat_left)
        net = share - tax
        overrides[(category, rate)] = tax
        note_lines.append(
            InvoiceLine(
                position=position,
                description=description,
                quantity=Decimal(1),
                unit="",
                unit_price=Decimal(net).scaleb(-exponent),
                vat_category=category,
                vat_rate=rate,
                net_amount=net,
            )
        )
    totals = vat.compute_totals(
        ((ln.vat_category, ln.vat_rate, ln.net_amount) for ln in note_lines),
        vat_overrides=overrides,
    )
    return note_lines, totals


def _groups_left(invoice: Invoice) -> dict[vat.VatGroup, tuple[int, int]]:
    """Per VAT group of the invoice: (taxable amount, VAT) not yet credited by its notes."""
    left = {
        (group["category"], vat.normalize_rate(group["rate"])): (
            int(group["taxable_amount"]),
            int(group["vat_amount"]),
        )
        for group in invoice.vat_breakdown
    }
    notes = Invoice.objects.filter(
        credited_invoice=invoice, status__in=[Status.OPEN, Status.PAID]
    ).values_list("vat_breakdown", flat=True)
    for breakdown in notes:
        for group in breakdown:
            key = (group["category"], vat.normalize_rate(group["rate"]))
            net, tax = left.get(key, (0, 0))
            left[key] = (net - int(group["taxable_amount"]), tax - int(group["vat_amount"]))
    return {key: (max(net, 0), max(tax, 0)) for key, (net, tax) in left.items()}


def _apportion(amount: int, weights: Mapping[Any, int]) -> dict[Any, int]:
    """Split ``amount`` over ``weights`` in proportion, in whole minor units (largest
    remainder), never giving a key more than its weight (``amount`` <= their sum)."""
    total = sum(weights.values())
    if total <= 0:
        return dict.fromkeys(weights, 0)
    shares = {key: amount * weight // total for key, weight in weights.items()}
    rest = amount - sum(shares.values())
    by_remainder = sorted(weights, key=lambda key: -((amount * weights[key]) % total))
    while rest > 0:
        room = [key for key in by_remainder if shares[key] < weights[key]]
        if not room:
            raise CreditExceedsRemaining("nothing is left to credit", field="credit_note")
        for key in room[:rest]:
            shares[key] += 1
        rest -= min(rest, len(room))
    return shares


def _issue(
    locked: Invoice,
    note_lines: list[InvoiceLine],
    totals: vat.Totals,
    *,
    by: Actor,
    reason: str,
) -> tuple[Invoice, str]:
    """Number, freeze and apply a credit note to the locked invoice (saved by the caller):
    never more than its amount due. Returns the note and the invoice's previous status."""
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
    _record_finalized(note, by)
    return note, previous


def _record_credited(
    locked: Invoice, note: Invoice, totals: vat.Totals, *, by: Actor, previous: str, reason: str
) -> None:
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
    emit_invoice("invoice.credited", locked, credit_note=note.pk, credited_amount=totals.gross)


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
