"""Every billing state change: one function per domain action.

Each service owns its transaction, locks the row it changes, checks its input
(bad input raises a ``billing.exceptions`` error and changes nothing), and
writes its audit event in the same transaction. Status changes go through
``_transition`` and the one map ``ALLOWED_TRANSITIONS``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from audit import record
from billing import vat
from billing.documents.hooks import invoice_finalized as queue_invoice_document
from billing.exceptions import (
    AmountExceedsDue,
    BillingError,
    CreditExceedsRemaining,
    EmptyInvoice,
    InvalidInput,
    InvalidStatusTransition,
    InvoiceNotDraft,
    MissingConfiguration,
    RefundExceedsPaid,
)
from billing.models import (
    CompanyProfile,
    Customer,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceSeries,
    PortalAccount,
)
from billing.money import Money, normalize_currency
from billing.ocr import make_ocr_reference

Actor = Any
"""A user, a saved model instance, or ``audit.SYSTEM`` (see ``audit.record``)."""

Status = Invoice.Status

# The one map of allowed status changes. A credit note goes DRAFT -> OPEN -> PAID
# as it is issued: it is applied in full to its invoice at once (docs/billing.md).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.OPEN}),
    Status.OPEN: frozenset({Status.PAID, Status.VOID, Status.UNCOLLECTIBLE}),
    Status.PAID: frozenset({Status.OPEN}),
    Status.UNCOLLECTIBLE: frozenset({Status.PAID, Status.VOID}),
    Status.VOID: frozenset(),
}

_M = TypeVar("_M", bound=models.Model)

_CUSTOMER_FIELDS = frozenset(
    {
        "name",
        "kind",
        "identity_number",
        "vat_id",
        "email",
        "address_line1",
        "address_line2",
        "postal_code",
        "city",
        "country",
        "language",
        "currency",
        "payment_terms_days",
    }
)
_COMPANY_FIELDS = frozenset(
    {
        "legal_name",
        "organisation_number",
        "vat_number",
        "address_line1",
        "address_line2",
        "postal_code",
        "city",
        "country",
        "email",
        "phone",
        "bankgiro",
        "iban",
        "bic",
        "f_skatt_text",
        "logo",
        "default_payment_terms_days",
    }
)
_DRAFT_FIELDS = frozenset({"customer", "currency", "payment_terms_days", "due_date", "notes"})
_LINE_FIELDS = frozenset(
    {"description", "quantity", "unit", "unit_price", "vat_category", "vat_rate", "position"}
)


# --- helpers -----------------------------------------------------------------


def _transition(invoice: Invoice, to: str) -> str:
    """Move ``invoice.status`` to ``to`` if ALLOWED_TRANSITIONS permits it; return the old one."""
    current = invoice.status
    if to == current:
        return current
    if to not in ALLOWED_TRANSITIONS[current]:
        raise InvalidStatusTransition(
            f"{invoice} is {current}; it cannot become {to}", field="status"
        )
    invoice.status = to
    return current


def _unknown_fields(given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidInput(f"unknown or read-only field(s): {', '.join(unknown)}", field=unknown[0])


def _validate(instance: models.Model, *, exclude: Sequence[str] = ()) -> None:
    """Run the model's field validators and clean(); the first error names its field."""
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            field, errors = next(iter(exc.message_dict.items()))
            raise InvalidInput("; ".join(errors), field=field) from exc
        raise InvalidInput("; ".join(exc.messages)) from exc


def _locked(instance: _M) -> _M:
    """A fresh copy of the row, locked FOR UPDATE until the transaction ends."""
    model = type(instance)
    return model._default_manager.select_for_update().get(pk=instance.pk)


def _lock_invoice(invoice: Invoice | int) -> Invoice:
    pk = invoice.pk if isinstance(invoice, Invoice) else invoice
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer", "series")
        .get(pk=pk)
    )


def _require_draft(invoice: Invoice) -> None:
    if invoice.status != Status.DRAFT:
        raise InvoiceNotDraft(
            f"{invoice} is finalized ({invoice.status}); its content can never change"
            " (issue a credit note instead)",
            field="status",
        )


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, float):
        raise InvalidInput("must be a Decimal or a string, never a float", field=field)
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInput(f"{value!r} is not a number", field=field) from exc
    if not result.is_finite():
        raise InvalidInput(f"{value!r} is not a number", field=field)
    return result


def _money_of(invoice: Invoice, amount: Money) -> int:
    if not isinstance(amount, Money):
        raise InvalidInput("must be a Money value", field="amount")
    if amount.currency != invoice.currency:
        raise InvalidInput(
            f"{amount.currency} does not match the invoice's currency {invoice.currency}",
            field="currency",
        )
    if amount.amount <= 0:
        raise InvalidInput(f"must be greater than zero, not {amount}", field="amount")
    return amount.amount


def _check_due_date(due_date: datetime.date | None, issue_date: datetime.date) -> None:
    if due_date is not None and due_date < issue_date:
        raise InvalidInput(
            f"the due date {due_date} is before the issue date {issue_date}", field="due_date"
        )


# --- customers and the company -----------------------------------------------


def create_customer(*, by: Actor, **fields: Any) -> Customer:
    """Create a customer whose numbers, country, language and currency are valid."""
    _unknown_fields(fields, _CUSTOMER_FIELDS)
    customer = Customer(**fields)
    if "currency" in fields:
        customer.currency = normalize_currency(fields["currency"])
    _validate(customer)
    with transaction.atomic():
        customer.save(force_insert=True)
        record("customer.created", actor=by, obj=customer, name=customer.name)
    return customer


def update_customer(customer: Customer, *, by: Actor, **changes: Any) -> Customer:
    """Change a customer's details; past invoices keep the buyer snapshot they froze."""
    _unknown_fields(changes, _CUSTOMER_FIELDS)
    if "currency" in changes:
        changes["currency"] = normalize_currency(changes["currency"])
    with transaction.atomic():
        locked = _locked(customer)
        changed = sorted(k for k, v in changes.items() if getattr(locked, k) != v)
        for key, value in changes.items():
            setattr(locked, key, value)
        _validate(locked)
        locked.save()
        record("customer.updated", actor=by, obj=locked, fields=changed)
    return locked


def link_portal_account(*, user: Any, customer: Customer, by: Actor) -> PortalAccount:
    """Give a user portal access to exactly this customer's invoices (one customer per user)."""
    with transaction.atomic():
        if PortalAccount.objects.select_for_update().filter(user=user).exists():
            raise InvalidInput(f"{user} already has a portal account", field="user")
        account = PortalAccount.objects.create(user=user, customer=customer)
        record(
            "customer.portal_account_linked",
            actor=by,
            obj=account,
            user_id=user.pk,
            customer_id=customer.pk,
        )
    return account


def update_company_profile(*, by: Actor, **changes: Any) -> CompanyProfile:
    """Create or change the seller profile; finalized invoices keep their seller snapshot."""
    _unknown_fields(changes, _COMPANY_FIELDS)
    with transaction.atomic():
        profile = CompanyProfile.objects.select_for_update().filter(singleton=1).first()
        created = profile is None
        profile = profile or CompanyProfile(singleton=1)
        changed = sorted(k for k, v in changes.items() if getattr(profile, k) != v)
        for key, value in changes.items():
            setattr(profile, key, value)
        _validate(profile)
        profile.save()
        record(
            "company.profile_created" if created else "company.profile_updated",
            actor=by,
            obj=profile,
            fields=changed,
        )
    return profile


# --- drafts and their lines --------------------------------------------------


@dataclass(frozen=True)
class _LineValues:
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_category: str
    vat_rate: Decimal
    unit: str


def _line_values(spec: Mapping[str, Any]) -> _LineValues:
    _unknown_fields(spec, _LINE_FIELDS)
    description = str(spec.get("description", "")).strip()
    if not description:
        raise InvalidInput("a line needs a description", field="description")
    if len(description) > 500:
        raise InvalidInput("at most 500 characters", field="description")
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
        unit=str(spec.get("unit", "") or ""),
    )


def _check_line_digits(quantity: Decimal, unit_price: Decimal) -> None:
    # The columns hold 4 decimals; refuse what would be silently rounded.
    for field, value, max_whole in (("quantity", quantity, 10), ("unit_price", unit_price, 12)):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -4:
            raise InvalidInput(f"at most 4 decimals, not {value}", field=field)
        if abs(value) >= Decimal(10) ** max_whole:
            raise InvalidInput(f"{value} is too large", field=field)


def _new_line(invoice: Invoice, values: _LineValues, position: int) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        position=position,
        description=values.description,
        quantity=values.quantity,
        unit=values.unit,
        unit_price=values.unit_price,
        vat_category=values.vat_category,
        vat_rate=values.vat_rate,
        net_amount=vat.line_net_amount(values.quantity, values.unit_price, invoice.currency),
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
    currency = normalize_currency(currency or customer.currency)
    terms = payment_terms_days if payment_terms_days is not None else _default_terms(customer)
    if isinstance(terms, bool) or not isinstance(terms, int) or not 0 <= terms <= 365:
        raise InvalidInput(f"must be 0-365 days, not {terms!r}", field="payment_terms_days")
    _check_due_date(due_date, timezone.localdate())
    series = series or _default_series(InvoiceKind.INVOICE)
    if series.kind != InvoiceKind.INVOICE:
        raise InvalidInput(f"series {series} numbers {series.kind}s", field="series")
    values = [_line_values(spec) for spec in lines]
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
        InvoiceLine.objects.bulk_create(
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
    return invoice


def update_draft_invoice(invoice: Invoice, *, by: Actor, **changes: Any) -> Invoice:
    """Change a DRAFT's customer, currency, terms, due date or notes; DRAFT only."""
    _unknown_fields(changes, _DRAFT_FIELDS)
    if "currency" in changes:
        changes["currency"] = normalize_currency(changes["currency"])
    if "due_date" in changes:
        _check_due_date(changes["due_date"], timezone.localdate())
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


# --- finalization --------------------------------------------------------------


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


def _seller_snapshot() -> dict[str, Any]:
    profile = CompanyProfile.objects.filter(singleton=1).first()
    if profile is None:
        raise MissingConfiguration(
            "the company profile (the seller) must be filled in before finalizing",
            field="company_profile",
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
    needs = sorted({line.vat_category for line in lines} & vat.BUYER_VAT_ID_REQUIRED)
    if needs and not invoice.customer.vat_id:
        raise InvalidInput(
            f"{invoice}: VAT category {', '.join(needs)} needs the buyer's VAT id"
            " (EN 16931 BR-AE-02)",
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
    if issue_date is not None and issue_date > timezone.localdate():
        raise InvalidInput(f"the issue date {issue_date} is in the future", field="issue_date")
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        lines = list(locked.lines.all())
        issued, now = issue_date or timezone.localdate(), timezone.now()
        _check_finalizable(locked, lines, issued)
        totals, stale = _totals_for(locked, lines)
        if stale:
            InvoiceLine.objects.bulk_update(stale, ["net_amount"])
        seller = _seller_snapshot()
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
    return locked


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
        if all_stale:
            InvoiceLine.objects.bulk_update(all_stale, ["net_amount"], batch_size=500)
        seller = _seller_snapshot()
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


# --- after finalization: void, uncollectible, payments, credit notes ------------------


def void_invoice(invoice: Invoice, *, by: Actor, reason: str = "") -> Invoice:
    """Void an OPEN or UNCOLLECTIBLE invoice with nothing paid or credited on it."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.is_credit_note:
            raise InvalidStatusTransition("a credit note cannot be voided", field="kind")
        if locked.amount_paid or locked.amount_credited:
            raise InvalidStatusTransition(
                f"{locked} has payments or credit notes on it; refund or credit it instead",
                field="status",
            )
        previous = _transition(locked, Status.VOID)
        locked.save(update_fields=["status", "updated_at"])
        record("invoice.voided", actor=by, obj=locked, previous_status=previous, reason=reason)
    return locked


def mark_uncollectible(invoice: Invoice, *, by: Actor, reason: str = "") -> Invoice:
    """Mark an OPEN invoice uncollectible (bad debt); later payments still count."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        if locked.is_credit_note:
            raise InvalidStatusTransition("a credit note has nothing to collect", field="kind")
        previous = _transition(locked, Status.UNCOLLECTIBLE)
        locked.save(update_fields=["status", "updated_at"])
        record(
            "invoice.marked_uncollectible",
            actor=by,
            obj=locked,
            previous_status=previous,
            amount_due=locked.amount_due,
            reason=reason,
        )
    return locked


def _settle(invoice: Invoice) -> str:
    """PAID when nothing is due any more, back to OPEN when a refund reopens it."""
    previous = invoice.status
    if invoice.amount_due == 0:
        _transition(invoice, Status.PAID)
    elif invoice.status == Status.PAID:
        _transition(invoice, Status.OPEN)
    return previous


def record_payment_amount(
    invoice: Invoice, *, amount: Money, by: Actor, reference: str = ""
) -> Invoice:
    """Add a received amount to an invoice, never beyond its amount due; PAID at zero due."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        minor = _money_of(locked, amount)
        if locked.is_credit_note or locked.status not in (Status.OPEN, Status.UNCOLLECTIBLE):
            raise InvalidStatusTransition(
                f"{locked} is {locked.status}; it takes no payment", field="status"
            )
        if minor > locked.amount_due:
            raise AmountExceedsDue(
                f"{amount} is more than the amount due {locked.due}", field="amount"
            )
        locked.amount_paid += minor
        previous = _settle(locked)
        locked.save(update_fields=["amount_paid", "status", "updated_at"])
        record(
            "invoice.payment_recorded",
            actor=by,
            obj=locked,
            amount=minor,
            currency=locked.currency,
            reference=reference,
            previous_status=previous,
            status=locked.status,
        )
    return locked


def record_refund_amount(
    invoice: Invoice, *, amount: Money, by: Actor, reference: str = ""
) -> Invoice:
    """Take a refunded amount off what was paid, never more than was paid; PAID reopens."""
    with transaction.atomic():
        locked = _lock_invoice(invoice)
        minor = _money_of(locked, amount)
        if minor > locked.amount_paid:
            raise RefundExceedsPaid(
                f"{amount} is more than was paid ({locked.money(locked.amount_paid)})",
                field="amount",
            )
        locked.amount_paid -= minor
        previous = _settle(locked)
        locked.save(update_fields=["amount_paid", "status", "updated_at"])
        record(
            "invoice.refund_recorded",
            actor=by,
            obj=locked,
            amount=minor,
            currency=locked.currency,
            reference=reference,
            previous_status=previous,
            status=locked.status,
        )
    return locked


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
            seller=_seller_snapshot(),
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


__all__ = [
    "ALLOWED_TRANSITIONS",
    "BillingError",
    "CreditLine",
    "add_invoice_line",
    "create_customer",
    "create_draft_invoice",
    "delete_draft_invoice",
    "finalize_invoice",
    "finalize_invoices",
    "issue_credit_note",
    "link_portal_account",
    "mark_uncollectible",
    "record_payment_amount",
    "record_refund_amount",
    "remove_invoice_line",
    "update_company_profile",
    "update_customer",
    "update_draft_invoice",
    "update_invoice_line",
    "void_invoice",
]
