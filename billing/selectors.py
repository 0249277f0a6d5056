"""Billing reads and access checks. A view asks here, so it can never forget a check."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from billing.models import CompanyProfile, Customer, Invoice, InvoiceLine, PortalAccount
from billing.vat import VatBreakdown, compute_totals, normalize_rate
from db.compiled import compiled
from db.instances import cached_relation


def get_company_profile() -> CompanyProfile | None:
    """The seller profile, or None before it is filled in."""
    return CompanyProfile.objects.filter(singleton=1).first()


_UNSET = object()


@compiled(int)
def _portal_account(user_id: int) -> Any:
    return PortalAccount.objects.select_related("customer").filter(user_id=user_id)[:1]


def customer_for_user(user: Any) -> Customer | None:
    """The one customer a portal user belongs to (None for staff and outsiders).

    A staff session is never a customer's, whatever links exist: staff reach invoices
    through the admin, never through the portal's paying pages.
    """
    if not getattr(user, "is_authenticated", False) or user.is_staff or user.is_superuser:
        return None
    # Looked up once per user object (one per request): every portal guard asks.
    cached = getattr(user, "_tillit_portal_customer", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    # Read with the user (SECURITY_REQUEST_USER_RELATED), else asked here.
    account = cached_relation(user, "portal_account", default=_UNSET)
    if account is _UNSET:
        account = _portal_account.first(user.pk)
    customer = account.customer if account else None
    user._tillit_portal_customer = customer
    return customer


def language_for_user(user: Any) -> str | None:
    """The language of the user's customer profile (sv, en); None for staff and outsiders."""
    customer = customer_for_user(user)
    return customer.language if customer is not None else None


def invoices_for_user(user: Any) -> Any:
    """Invoices and credit notes the user may see: staff all, a customer user only its
    customer's finalized documents, anyone else none."""
    base = Invoice.objects.select_related("customer", "series")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return base.none()
    if user.is_staff:
        return base
    customer = customer_for_user(user)
    if customer is None:
        return base.none()
    return _customer_invoices(customer.pk)


def _customer_invoices(customer_id: Any) -> Any:
    """A customer's finalized invoices and credit notes, as its portal users see them."""
    return (
        Invoice.objects.select_related("customer", "series")
        .filter(customer_id=customer_id)
        .finalized()
    )


@compiled(int, int)
def _customer_invoice(customer_id: int, pk: int) -> Any:
    return _customer_invoices(customer_id).filter(pk=pk)[:1]


def _as_id(value: Any) -> int | None:
    """A primary key as a URL or a caller gives it (an int, or digits), else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        value = int(value)
    return value if type(value) is int and 0 <= value < 2**63 else None


def get_invoice_for_user(user: Any, pk: Any, *, with_lines: bool = True) -> Invoice:
    """The invoice (with its lines unless ``with_lines`` is False), or Http404 if it does not
    exist or the user may not see it (the same answer either way, so ids cannot be probed)."""
    customer = customer_for_user(user)
    if customer is not None and not with_lines and not user.is_staff and user.is_active:
        # A portal page about one invoice (pay, receipt): the hot path, compiled once.
        wanted = _as_id(pk)
        found_one = _customer_invoice.first(customer.pk, wanted) if wanted is not None else None
        if found_one is None:
            raise Http404("No such invoice")
        return found_one
    found = invoices_for_user(user)
    if with_lines:
        lines = Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "pk"))
        found = found.prefetch_related(lines)
    try:
        return found.get(pk=pk)
    except (Invoice.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such invoice") from exc


@dataclass(frozen=True)
class CustomerScope:
    """Whose records an API caller sees: one customer's (the token of a customer's portal
    user: its finalized invoices, as in the portal), every customer's (a server
    integration's client-credentials token: drafts too, as far as its scopes allow), or
    nobody's (any other user's token: staff work in the admin)."""

    customer_id: int | None = None
    every_customer: bool = False

    def covers(self, customer_id: int) -> bool:
        """Whether the caller sees this customer's records."""
        return self.every_customer or (
            self.customer_id is not None and self.customer_id == customer_id
        )

    def customers(self) -> QuerySet[Customer]:
        if self.every_customer:
            return Customer.objects.order_by("pk")
        return Customer.objects.filter(pk=self.customer_id or -1).order_by("pk")

    def invoices(self) -> QuerySet[Invoice]:
        """Invoices and credit notes the caller sees (customer and series read with them)."""
        if self.every_customer:
            return Invoice.objects.select_related("customer", "series")
        if self.customer_id is None:
            return Invoice.objects.none()
        return _customer_invoices(self.customer_id)


def api_scope(user: Any, *, integration: bool) -> CustomerScope:
    """The ``CustomerScope`` of an API token: ``integration`` for a client-credentials token
    (no user), else the user's (a customer's portal user sees its customer's records)."""
    if integration:
        return CustomerScope(every_customer=True)
    customer = customer_for_user(user)
    if customer is None or not user.is_active:
        return CustomerScope()
    return CustomerScope(customer_id=customer.pk)


@compiled(int)
def _any_invoice(pk: int) -> Any:
    return Invoice.objects.select_related("customer", "series").filter(pk=pk)[:1]


@compiled(int)
def _any_customer(pk: int) -> Any:
    return Customer.objects.filter(pk=pk)[:1]


@compiled(int)
def _lines_of(invoice_id: int) -> Any:
    return InvoiceLine.objects.filter(invoice_id=invoice_id).order_by("position", "pk")


def get_invoice_in_scope(scope: CustomerScope, pk: Any) -> Invoice:
    """The invoice, or Http404 if it does not exist or is outside ``scope`` (the same answer
    either way, so ids cannot be probed). Every API call about one invoice asks: a query
    compiled once."""
    wanted = _as_id(pk)
    found = None
    if wanted is not None and scope.every_customer:
        found = _any_invoice.first(wanted)
    elif wanted is not None and scope.customer_id is not None:
        found = _customer_invoice.first(scope.customer_id, wanted)
    if found is None:
        raise Http404("No such invoice")
    return found


def invoice_lines(invoice: Invoice) -> list[InvoiceLine]:
    """The invoice's lines in their order (the caller has checked access to the invoice)."""
    return _lines_of.fetch(invoice.pk)


def get_customer_in_scope(scope: CustomerScope, pk: Any) -> Customer:
    """The customer, or Http404 if it does not exist or is outside ``scope``."""
    wanted = _as_id(pk)
    customer = _any_customer.first(wanted) if wanted is not None else None
    if customer is None or not scope.covers(customer.pk):
        raise Http404("No such customer")
    return customer


def invoice_credit_notes(invoice: Invoice) -> QuerySet[Invoice]:
    """The credit notes issued on an invoice (finalized: open or paid), oldest first."""
    return invoice.credit_notes.filter(
        status__in=[Invoice.Status.OPEN, Invoice.Status.PAID]
    ).order_by("issue_date", "pk")


def invoice_vat_summary(invoice: Invoice) -> tuple[VatBreakdown, ...]:
    """VAT per (category, rate): frozen for a finalized invoice, computed live for a draft."""
    if not invoice.is_draft:
        return tuple(
            VatBreakdown(
                category=group["category"],
                rate=normalize_rate(group["rate"]),
                taxable_amount=int(group["taxable_amount"]),
                vat_amount=int(group["vat_amount"]),
            )
            for group in invoice.vat_breakdown
        )
    totals = compute_totals(
        (line.vat_category, line.vat_rate, line.net_amount) for line in invoice.lines.all()
    )
    return totals.breakdown


# --- the staff dashboards (billing/dashboard.py): a fixed number of queries each ---------


@dataclass(frozen=True)
class CurrencyFigure:
    """How many documents, and how much (minor units), in one currency."""

    currency: str
    count: int
    amount: int


def _due_amount() -> Any:
    return F("gross_total") - F("amount_paid") - F("amount_credited")


@dataclass(frozen=True)
class ClerkFigures:
    """What waits for a billing clerk: drafts, overdue and due this week (per currency),
    invoices paid in full today (failed deliveries: ``billing.delivery.selectors``)."""

    drafts: int
    overdue: list[CurrencyFigure]
    due_this_week: list[CurrencyFigure]
    paid_today: list[CurrencyFigure]


def clerk_figures(*, now: datetime.datetime | None = None) -> ClerkFigures:
    """The clerk's dashboard, in three queries whatever the number of invoices.

    "Paid today" counts invoices that are PAID and last changed today: a finalized
    invoice changes only when money or a credit note settles it."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    week_end = today + datetime.timedelta(days=7)
    day_start = timezone.make_aware(datetime.datetime.combine(today, datetime.time.min))
    overdue = Q(status=Invoice.Status.OPEN, due_date__lt=today)
    this_week = Q(status=Invoice.Status.OPEN, due_date__gte=today, due_date__lt=week_end)
    paid_today = Q(status=Invoice.Status.PAID, updated_at__gte=day_start)
    rows = (
        Invoice.objects.invoices()
        .filter(overdue | this_week | paid_today)
        .values("currency")
        .annotate(
            overdue_count=Count("pk", filter=overdue),
            overdue_amount=Sum(_due_amount(), filter=overdue),
            week_count=Count("pk", filter=this_week),
            week_amount=Sum(_due_amount(), filter=this_week),
            paid_count=Count("pk", filter=paid_today),
            paid_amount=Sum("amount_paid", filter=paid_today),
        )
        .order_by("currency")
    )
    figures: dict[str, list[CurrencyFigure]] = {"overdue": [], "week": [], "paid": []}
    for row in rows:
        values: dict[str, Any] = dict(row)
        for name in figures:
            if values[f"{name}_count"]:
                figures[name].append(
                    CurrencyFigure(
                        values["currency"], values[f"{name}_count"], values[f"{name}_amount"]
                    )
                )
    return ClerkFigures(
        drafts=Invoice.objects.invoices().drafts().count(),
        overdue=figures["overdue"],
        due_this_week=figures["week"],
        paid_today=figures["paid"],
    )


@dataclass(frozen=True)
class VatFigure:
    """One VAT group of a period, net of its credit notes (minor units)."""

    currency: str
    category: str
    rate: Decimal
    taxable_amount: int
    vat_amount: int


@dataclass(frozen=True)
class PeriodFigures:
    """An accounting period's books: invoiced less credited, and VAT per rate."""

    start: datetime.date
    end: datetime.date
    """The first day after the period."""
    invoices: int
    credit_notes: int
    totals: list[CurrencyFigure]
    """Net of credit notes (gross: VAT included) per currency; ``count`` is documents."""
    vat: list[VatFigure]


def period_figures(start: datetime.date, end: datetime.date) -> PeriodFigures:
    """Invoices and credit notes issued in [start, end) (finalized, void ones excluded),
    credit notes subtracted, with VAT per (currency, category, rate): one query."""
    rows = (
        Invoice.objects.finalized()
        .exclude(status=Invoice.Status.VOID)
        .filter(issue_date__gte=start, issue_date__lt=end)
        .values_list("kind", "currency", "gross_total", "vat_breakdown")
    )
    counts: dict[str, int] = {Invoice.Kind.INVOICE: 0, Invoice.Kind.CREDIT_NOTE: 0}
    gross: dict[str, list[int]] = {}
    groups: dict[tuple[str, str, Decimal], list[int]] = {}
    for kind, currency, gross_total, breakdown in rows:
        sign = -1 if kind == Invoice.Kind.CREDIT_NOTE else 1
        counts[kind] += 1
        total = gross.setdefault(currency, [0, 0])
        total[0] += 1
        total[1] += sign * gross_total
        for group in breakdown:
            key = (currency, group["category"], normalize_rate(group["rate"]))
            sums = groups.setdefault(key, [0, 0])
            sums[0] += sign * int(group["taxable_amount"])
            sums[1] += sign * int(group["vat_amount"])
    return PeriodFigures(
        start=start,
        end=end,
        invoices=counts[Invoice.Kind.INVOICE],
        credit_notes=counts[Invoice.Kind.CREDIT_NOTE],
        totals=[CurrencyFigure(c, n, amount) for c, (n, amount) in sorted(gross.items())],
        vat=[
            VatFigure(currency, category, rate, taxable, tax)
            for (currency, category, rate), (taxable, tax) in sorted(
                groups.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2])
            )
        ],
    )


def month_bounds(day: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The calendar month holding ``day``: its first day and the first day after it."""
    start = day.replace(day=1)
    following = (start + datetime.timedelta(days=32)).replace(day=1)
    return start, following
