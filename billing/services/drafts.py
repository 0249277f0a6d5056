"""Draft invoices and their lines (DRAFT only)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.db import models, transaction
from django.utils import timezone

from audit import record
from billing import vat
from billing.exceptions import (
    InvalidInput,
    MissingConfiguration,
)
from billing.models import (
    CompanyProfile,
    Customer,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSeries,
)
from billing.money import check_bounded, invoice_currency
from billing.services._base import (
    _DRAFT_FIELDS,
    _LINE_FIELDS,
    Actor,
    InvoiceWithLines,
    _check_due_date,
    _decimal,
    _lock_invoice,
    _printable,
    _require_draft,
    _unknown_fields,
)


@dataclass(frozen=True)
class _LineValues:
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_category: str
    vat_rate: Decimal
    unit: str


_NOTES_MAX = 5000


def _text(value: object, field: str, *, max_length: int, lines: bool = False) -> str:
    """Printed text: stripped, bounded, and ``_printable``."""
    text = str(value or "").strip()
    if len(text) > max_length:
        raise InvalidInput(f"at most {max_length} characters", field=field)
    return _printable(text, field, lines=lines)


def _line_values(spec: Mapping[str, Any]) -> _LineValues:
    _unknown_fields(spec, _LINE_FIELDS)
    description = _text(spec.get("description"), "description", max_length=500, lines=True)
    if not description:
        raise InvalidInput("a line needs a description", field="description")
    quantity = vat.check_quantity(spec.get("quantity"))
    unit_price = _decimal(spec.get("unit_price"), "unit_price")
    if unit_price < 0:
        raise InvalidInput(f"must not be negative, not {unit_price}", field="unit_price")
    category = str(spec.get("vat_category", "S"))
    rate = vat.check_vat(category, spec.get("vat_rate", "0" if category != "S" else None))
    _check_line_digits(quantity, unit_price)
    return _LineValues(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        vat_category=category,
        vat_rate=rate,
        unit=_text(spec.get("unit"), "unit", max_length=20),
    )


def _check_line_digits(quantity: Decimal, unit_price: Decimal) -> None:
    # The columns hold 4 decimals; refuse what would be silently rounded.
    for field, value, max_whole in (("quantity", quantity, 10), ("unit_price", unit_price, 12)):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -4:
            raise InvalidInput(f"at most 4 decimals, not {value}", field=field)
        if abs(value) >= Decimal(10) ** max_whole:
            raise InvalidInput(f"{value} is too large", field=field)


def _as_stored(value: Decimal, field: str) -> Decimal:
    """The value with its column's decimal places (``2`` -> ``2.0000``), as a line read back
    holds it: the line a service returns reads the same as one read again."""
    column = cast(models.DecimalField, InvoiceLine._meta.get_field(field))
    return value.quantize(Decimal(1).scaleb(-column.decimal_places))


def _new_line(invoice: Invoice, values: _LineValues, position: int) -> InvoiceLine:
    net = check_bounded(
        vat.line_net_amount(values.quantity, values.unit_price, invoice.currency),
        invoice.currency,
        what="quantity x unit price",
        field="unit_price",
    )
    return InvoiceLine(
        invoice=invoice,
        position=position,
        description=values.description,
        quantity=_as_stored(values.quantity, "quantity"),
        unit=values.unit,
        unit_price=_as_stored(values.unit_price, "unit_price"),
        vat_category=values.vat_category,
        vat_rate=_as_stored(values.vat_rate, "vat_rate"),
        net_amount=net,
    )


def _default_series(kind: str) -> InvoiceSeries:
    series = InvoiceSeries.objects.filter(kind=kind, is_default=True).first()
    if series is None:
        raise MissingConfiguration(f"no default numbering series for {kind}", field="series")
    return series


def _default_terms(customer: Customer) -> int:
    if customer.payment_terms_days is not None:
        return customer.payment_terms_days
    profile = CompanyProfile.objects.filter(singleton=1).only("default_payment_terms_days").first()
    if profile is not None:
        return profile.default_payment_terms_days
    from billing.models import default_payment_terms_days

    return default_payment_terms_days()


def create_draft_invoice(
    *,
    customer: Customer,
    by: Actor,
    lines: Sequence[Mapping[str, Any]] = (),
    currency: str | None = None,
    payment_terms_days: int | None = None,
    due_date: datetime.date | None = None,
    notes: str = "",
    series: InvoiceSeries | None = None,
) -> Invoice:
    """Create a DRAFT invoice (no number yet) with its lines, all checked first."""
    return create_draft_invoice_with_lines(
        customer=customer,
        by=by,
        lines=lines,
        currency=currency,
        payment_terms_days=payment_terms_days,
        due_date=due_date,
        notes=notes,
        series=series,
    ).invoice


def create_draft_invoice_with_lines(
    *,
    customer: Customer,
    by: Actor,
    lines: Sequence[Mapping[str, Any]] = (),
    currency: str | None = None,
    payment_terms_days: int | None = None,
    due_date: datetime.date | None = None,
    notes: str = "",
    series: InvoiceSeries | None = None,
) -> InvoiceWithLines:
    """``create_draft_invoice``, returning the lines it created (in order) beside the draft."""
    currency = invoice_currency(currency or customer.currency)
    terms = payment_terms_days if payment_terms_days is not None else _default_terms(customer)
    if isinstance(terms, bool) or not isinstance(terms, int) or not 0 <= terms <= 365:
        raise InvalidInput(f"must be 0-365 days, not {terms!r}", field="payment_terms_days")
    _check_due_date(due_date, timezone.localdate())
    series = series or _default_series(InvoiceKind.INVOICE)
    if series.kind != InvoiceKind.INVOICE:
        raise InvalidInput(f"series {series} numbers {series.kind}s", field="series")
    values = [_line_values(spec) for spec in lines]
    notes = _text(notes, "notes", max_length=_NOTES_MAX, lines=True)
    invoice = Invoice(
        kind=InvoiceKind.INVOICE,
        series=series,
        customer=customer,
        currency=currency,
        payment_terms_days=terms,
        due_date=due_date,
        notes=notes,
    )
    with transaction.atomic():
        invoice.save(force_insert=True)
        created = InvoiceLine.objects.bulk_create(
            [_new_line(invoice, value, position) for position, value in enumerate(values, 1)]
        )
        record(
            "invoice.draft_created",
            actor=by,
            obj=invoice,
            customer_id=customer.pk,
            currency=currency,
            lines=len(values),
        )
    return InvoiceWithLines(invoice, created)


def update_draft_invoice(invoice: Invoice, *, by: Actor, **changes: Any) -> Invoice:
    """Change a DRAFT's customer, currency, terms, due date or notes; DRAFT only."""
    _unknown_fields(changes, _DRAFT_FIELDS)
    if "currency" in changes:
        changes["currency"] = invoice_currency(changes["currency"])
    if "due_date" in changes:
        _check_due_date(changes["due_date"], timezone.localdate())
    if "notes" in changes:
        changes["notes"] = _text(changes["notes"], "notes", max_length=_NOTES_MAX, lines=True)
    terms = changes.get("payment_terms_days")
    if terms is not None and (isinstance(terms, bool) or not 0 <= int(terms) <= 365):
        raise InvalidInput(f"must be 0-365 days, not {terms!r}", field="payment_terms_days")
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        _require_draft(locked)
        for key, value in changes.items():
            setattr(locked, key, value)
        locked.save()
        if "currency" in changes:
            # Line nets are in minor units of the currency: recompute them.
            lines = list(locked.lines.all())
            for line in lines:
                line.net_amount = vat.line_net_amount(
                    line.quantity, line.unit_price, locked.currency
                )
            InvoiceLine.objects.bulk_update(lines, ["net_amount"])
        record("invoice.draft_updated", actor=by, obj=locked, fields=sorted(changes))
    return locked


def add_invoice_line(invoice: Invoice, *, by: Actor, **line: Any) -> InvoiceLine:
    """Append a checked line to a DRAFT invoice; DRAFT only."""
    values = _line_values(line)
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        _require_draft(locked)
        last = locked.lines.aggregate(last=models.Max("position"))["last"] or 0
        new = _new_line(locked, values, last + 1)
        new.save(force_insert=True)
        record(
            "invoice.line_added",
            actor=by,
            obj=locked,
            line_id=new.pk,
            net_amount=new.net_amount,
        )
    return new


def update_invoice_line(line: InvoiceLine, *, by: Actor, **changes: Any) -> InvoiceLine:
    """Change a line of a DRAFT invoice, rechecking the whole line; DRAFT only."""
    _unknown_fields(changes, _LINE_FIELDS)
    with transaction.atomic():
        locked_invoice = _lock_invoice(line.invoice_id)
        _require_draft(locked_invoice)
        locked = InvoiceLine.objects.select_for_update().get(pk=line.pk)
        merged = {
            "description": locked.description,
            "quantity": locked.quantity,
            "unit_price": locked.unit_price,
            "vat_category": locked.vat_category,
            "vat_rate": locked.vat_rate,
            "unit": locked.unit,
        }
        position = changes.pop("position", locked.position)
        merged.update(changes)
        values = _line_values(merged)
        fresh = _new_line(locked_invoice, values, int(position))
        fresh.pk = locked.pk
        fresh.save(force_update=True)
        record(
            "invoice.line_updated",
            actor=by,
            obj=locked_invoice,
            line_id=fresh.pk,
            fields=sorted([*changes, *(["position"] if position != locked.position else [])]),
            net_amount=fresh.net_amount,
        )
    return fresh


def remove_invoice_line(line: InvoiceLine, *, by: Actor) -> None:
    """Delete a line of a DRAFT invoice; DRAFT only."""
    with transaction.atomic():
        locked_invoice = _lock_invoice(line.invoice_id)
        _require_draft(locked_invoice)
        deleted, _ = InvoiceLine.objects.filter(pk=line.pk, invoice=locked_invoice).delete()
        if not deleted:
            raise InvalidInput(f"line {line.pk} is not on {locked_invoice}", field="line")
        record("invoice.line_removed", actor=by, obj=locked_invoice, line_id=line.pk)


def delete_draft_invoice(invoice: Invoice, *, by: Actor) -> None:
    """Delete a DRAFT (it has no number, so no gap appears); DRAFT only."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        _require_draft(locked)
        record("invoice.draft_deleted", actor=by, obj=locked, customer_id=locked.customer_id)
        locked.delete()


def draft_totals(*, currency: str, lines: Sequence[Mapping[str, Any]]) -> vat.Totals:
    """The totals a draft with these lines would have, computed as finalization computes
    them (line nets half-up, VAT per group on their sum); each line checked as
    ``add_invoice_line`` checks it (InvalidInput naming the field). Writes nothing."""
    currency = invoice_currency(currency)
    nets = []
    for spec in lines:
        values = _line_values(spec)
        net = vat.line_net_amount(values.quantity, values.unit_price, currency)
        check_bounded(net, currency, what="quantity x unit price", field="unit_price")
        nets.append((values.vat_category, values.vat_rate, net))
    return vat.compute_totals(nets)
