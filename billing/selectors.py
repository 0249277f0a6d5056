"""Billing reads and access checks. A view asks here, so it can never forget a check."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

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
