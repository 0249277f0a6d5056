"""Billing reads and access checks. A view asks here, so it can never forget a check."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import Http404

from billing.models import CompanyProfile, Customer, Invoice, InvoiceLine, PortalAccount
from billing.vat import VatBreakdown, compute_totals, normalize_rate


def get_company_profile() -> CompanyProfile | None:
    """The seller profile, or None before it is filled in."""
    return CompanyProfile.objects.filter(singleton=1).first()


_UNSET = object()


def customer_for_user(user: Any) -> Customer | None:
    """The one customer a portal user belongs to (None for staff and outsiders)."""
    if not getattr(user, "is_authenticated", False):
        return None
    # Looked up once per user object (one per request): every portal guard asks.
    cached = getattr(user, "_tillit_portal_customer", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    account = PortalAccount.objects.select_related("customer").filter(user_id=user.pk).first()
    customer = account.customer if account else None
    user._tillit_portal_customer = customer
    return customer


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
    return base.filter(customer=customer).finalized()


def get_invoice_for_user(user: Any, pk: Any, *, with_lines: bool = True) -> Invoice:
    """The invoice (with its lines unless ``with_lines`` is False), or Http404 if it does not
    exist or the user may not see it (the same answer either way, so ids cannot be probed)."""
    found = invoices_for_user(user)
    if with_lines:
        lines = Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "pk"))
        found = found.prefetch_related(lines)
    try:
        return found.get(pk=pk)
    except (Invoice.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such invoice") from exc


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
