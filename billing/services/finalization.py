"""Finalization: gapless numbers per series, frozen content, totals, OCR."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Sequence
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from audit import record
from billing import vat
from billing.documents.hooks import invoice_finalized as queue_invoice_document
from billing.exceptions import (
    EmptyInvoice,
    InvalidInput,
    InvalidStatusTransition,
    MissingConfiguration,
)
from billing.models import (
    CompanyProfile,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSeries,
)
from billing.money import check_bounded, invoice_currency
from billing.ocr import make_ocr_reference
from billing.services._base import (
    Actor,
    InvoiceWithLines,
    Status,
    _check_due_date,
    _lock_invoice,
    _transition,
)
from billing.webhooks import emit_invoice


def _take_numbers(series: InvoiceSeries, count: int = 1) -> int:
    """Reserve ``count`` consecutive numbers of the series in one statement; the first.

    The UPDATE locks the series row until the transaction ends, so concurrent
    finalizations queue here, and a rollback returns the numbers with it: no gap,
    no duplicate. (One round trip instead of SELECT FOR UPDATE + UPDATE.)
    """
    table = connection.ops.quote_name(InvoiceSeries._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_number = next_number + %s WHERE id = %s"  # noqa: S608
            " RETURNING next_number - %s",
            [count, series.pk, count],
        )
        row = cursor.fetchone()
    if row is None:
        raise MissingConfiguration(f"numbering series {series} does not exist", field="series")
    return int(row[0])


def _seller_snapshot(categories: Collection[str]) -> dict[str, Any]:
    """The seller as the documents with lines of these VAT categories will state it; the
    company profile must exist, and hold the VAT number every category needs (EN 16931
    BR-S-02, BR-Z-02, BR-E-02, BR-AE-02, BR-IC-02, BR-G-02)."""
    profile = CompanyProfile.objects.filter(singleton=1).first()
    if profile is None:
        raise MissingConfiguration(
            "the company profile (the seller) must be filled in before finalizing",
            field="company_profile",
        )
    rules = sorted({vat.SELLER_VAT_ID_RULES[c] for c in categories if c in vat.SELLER_VAT_ID_RULES})
    if rules and not profile.vat_number.strip():
        named = ", ".join(sorted(set(categories) & set(vat.SELLER_VAT_ID_RULES)))
        raise MissingConfiguration(
            f"the company profile's VAT number (vat_number) is empty: EN 16931 needs the"
            f" seller's VAT id on a document with VAT category {named} ({', '.join(rules)});"
            " fill it in on the company profile",
            field="vat_number",
        )
    return profile.snapshot()


def _due_date(invoice: Invoice, today: datetime.date) -> datetime.date:
    due_date = invoice.due_date or today + datetime.timedelta(days=invoice.payment_terms_days)
    _check_due_date(due_date, today)
    return due_date


def _freeze(
    invoice: Invoice,
    totals: vat.Totals,
    *,
    number: int,
    seller: dict[str, Any],
    today: datetime.date,
    now: datetime.datetime,
) -> None:
    """Number, date (``today``: the issue date), snapshot and total a locked DRAFT in
    memory (saved by the caller)."""
    invoice.due_date = _due_date(invoice, today)
    invoice.number = number
    invoice.display_number = invoice.series.display_number(number)
    invoice.issue_date = today
    invoice.seller_snapshot = seller
    invoice.buyer_snapshot = invoice.customer.snapshot()
    invoice.net_total, invoice.vat_total, invoice.gross_total = (
        totals.net,
        totals.vat,
        totals.gross,
    )
    invoice.vat_breakdown = [group.as_json() for group in totals.breakdown]
    invoice.finalized_at = now
    invoice.updated_at = now
    if invoice.kind == InvoiceKind.INVOICE:
        invoice.ocr_reference = make_ocr_reference(invoice.pk)
    _transition(invoice, Status.OPEN)


_FROZEN_ON_FINALIZE = [
    "number",
    "display_number",
    "issue_date",
    "due_date",
    "seller_snapshot",
    "buyer_snapshot",
    "net_total",
    "vat_total",
    "gross_total",
    "vat_breakdown",
    "finalized_at",
    "ocr_reference",
    "status",
    "updated_at",
]


def _check_finalizable(
    invoice: Invoice, lines: Sequence[InvoiceLine], today: datetime.date
) -> None:
    """Every check of a finalization, before any number is taken."""
    if invoice.status != Status.DRAFT:
        raise InvalidStatusTransition(
            f"{invoice} is already finalized ({invoice.status})", field="status"
        )
    if not lines:
        raise EmptyInvoice(f"{invoice} has no lines; add at least one", field="lines")
    invoice_currency(invoice.currency)  # a draft made before the rule: refused by name
    needs = sorted({line.vat_category for line in lines} & vat.BUYER_VAT_ID_REQUIRED)
    if needs and not invoice.customer.vat_id:
        rules = ", ".join(vat.BUYER_VAT_ID_RULES[category] for category in needs)
        raise InvalidInput(
            f"{invoice}: VAT category {', '.join(needs)} needs the buyer's VAT id"
            f" (EN 16931 {rules})",
            field="vat_id",
        )
    _due_date(invoice, today)


def _totals_for(
    invoice: Invoice, lines: Sequence[InvoiceLine]
) -> tuple[vat.Totals, list[InvoiceLine]]:
    """The invoice's totals, and the lines whose stored net no longer matches (recomputed)."""
    stale = []
    for line in lines:
        net = vat.line_net_amount(line.quantity, line.unit_price, invoice.currency)
        if net != line.net_amount:
            line.net_amount = net
            stale.append(line)
    totals = vat.compute_totals((ln.vat_category, ln.vat_rate, ln.net_amount) for ln in lines)
    total = max(totals.net, totals.gross, key=abs)
    check_bounded(total, invoice.currency, what=f"{invoice}: the total", field="lines")
    return totals, stale


def _record_finalized(invoice: Invoice, by: Actor, **extra: Any) -> None:
    record(
        "invoice.finalized",
        actor=by,
        obj=invoice,
        number=invoice.display_number,
        gross_total=invoice.gross_total,
        currency=invoice.currency,
        **extra,
    )
    queue_invoice_document(invoice)  # after commit: render, sign, deliver (documents)
    emit_invoice("invoice.finalized", invoice)  # webhooks: posted after commit


def _check_issue_date(series: InvoiceSeries, number: int, issue_date: datetime.date) -> None:
    """A back-dated issue date: never in the future, never before an earlier number's date.

    Called with the series row locked (after ``_take_numbers``), so numbers and
    dates of a series stay in the same order however finalizations race.
    """
    if issue_date > timezone.localdate():
        raise InvalidInput(f"the issue date {issue_date} is in the future", field="issue_date")
    latest = (
        Invoice.objects.filter(series=series, number__lt=number)
        .aggregate(latest=models.Max("issue_date"))
        .get("latest")
    )
    if latest is not None and issue_date < latest:
        raise InvalidInput(
            f"the issue date {issue_date} is before {latest}, the date of an earlier number"
            f" in series {series}",
            field="issue_date",
        )


def finalize_invoice(
    invoice: Invoice, *, by: Actor, issue_date: datetime.date | None = None
) -> Invoice:
    """Lock the DRAFT, give it the next gapless number of its series, freeze it; DRAFT only.

    ``issue_date`` (default today) back-dates it, e.g. when importing or seeding.
    """
    return finalize_invoice_with_lines(invoice, by=by, issue_date=issue_date).invoice


def finalize_invoice_with_lines(
    invoice: Invoice, *, by: Actor, issue_date: datetime.date | None = None
) -> InvoiceWithLines:
    """``finalize_invoice``, returning the lines it froze (in their order) beside the invoice."""
    if issue_date is not None and issue_date > timezone.localdate():
        raise InvalidInput(f"the issue date {issue_date} is in the future", field="issue_date")
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        lines = list(locked.lines.all())
        issued, now = issue_date or timezone.localdate(), timezone.now()
        _check_finalizable(locked, lines, issued)
        totals, stale = _totals_for(locked, lines)
        seller = _seller_snapshot({line.vat_category for line in lines})
        if stale:
            InvoiceLine.objects.bulk_update(stale, ["net_amount"])
        number = _take_numbers(locked.series)
        if issue_date is not None:
            _check_issue_date(locked.series, number, issue_date)
        _freeze(locked, totals, number=number, seller=seller, today=issued, now=now)
        locked.save(update_fields=_FROZEN_ON_FINALIZE)
        back_dated: dict[str, Any] = {}
        if issue_date is not None:
            # A back-dated issue date is worth an auditor's eye: record it.
            back_dated["issue_date"] = issue_date.isoformat()
        _record_finalized(locked, by, **back_dated)
    return InvoiceWithLines(locked, lines)


def finalize_invoices(invoices: Sequence[Invoice], *, by: Actor) -> list[Invoice]:
    """Finalize a billing run of DRAFTs together: all or none, consecutive gapless numbers.

    The same checks and the same result as ``finalize_invoice`` for each invoice
    (one audit event each), in one transaction: the invoices are locked in id
    order (no deadlock between two runs) and numbered in id order, each series
    taking its whole block of numbers in one statement.
    """
    pks = [invoice.pk for invoice in invoices]
    if len(set(pks)) != len(pks):
        raise InvalidInput("an invoice is listed twice", field="invoices")
    if not pks:
        return []
    with transaction.atomic():
        locked = list(
            Invoice.objects.select_for_update(of=("self",))
            .select_related("customer", "series")
            .filter(pk__in=pks)
            .order_by("pk")
        )
        if len(locked) != len(pks):
            missing = sorted(set(pks) - {invoice.pk for invoice in locked})
            raise InvalidInput(f"no such invoice(s): {missing}", field="invoices")
        lines_of: dict[int, list[InvoiceLine]] = {pk: [] for pk in pks}
        for line in InvoiceLine.objects.filter(invoice_id__in=pks).order_by("position", "pk"):
            lines_of[line.invoice_id].append(line)
        today, now = timezone.localdate(), timezone.now()
        all_stale: list[InvoiceLine] = []
        totals_of: dict[int, vat.Totals] = {}
        for invoice in locked:
            _check_finalizable(invoice, lines_of[invoice.pk], today)
            totals_of[invoice.pk], stale = _totals_for(invoice, lines_of[invoice.pk])
            all_stale.extend(stale)
        seller = _seller_snapshot({line.vat_category for ls in lines_of.values() for line in ls})
        if all_stale:
            InvoiceLine.objects.bulk_update(all_stale, ["net_amount"], batch_size=500)
        next_of: dict[int, int] = {}
        for series_id in sorted({invoice.series_id for invoice in locked}):
            series = next(inv.series for inv in locked if inv.series_id == series_id)
            count = sum(1 for inv in locked if inv.series_id == series_id)
            next_of[series_id] = _take_numbers(series, count)
        for invoice in locked:
            number = next_of[invoice.series_id]
            next_of[invoice.series_id] = number + 1
            _freeze(
                invoice, totals_of[invoice.pk], number=number, seller=seller, today=today, now=now
            )
        for invoice in locked:
            # One UPDATE per invoice: Django's bulk_update builds a CASE per field and
            # row, which costs far more to compile than these statements cost to run.
            invoice.save(update_fields=_FROZEN_ON_FINALIZE)
            _record_finalized(invoice, by)
    by_pk = {invoice.pk: invoice for invoice in locked}
    return [by_pk[pk] for pk in pks]
