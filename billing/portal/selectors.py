"""Portal reads: who the portal answers for, and their invoices, filtered and searched."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.selectors import customer_for_user, invoices_for_user
from security.selectors import is_session_verified, request_needs_second_factor

STATUS_FILTERS = ("all", "open", "overdue", "paid")
MAX_QUERY = 100


def portal_invoices(user: Any, *, status: str = "all", query: str = "") -> QuerySet[Invoice]:
    """The user's customer's invoices (never credit notes, never drafts), newest first.

    ``status``: all, open, overdue or paid (anything else means all); ``query``
    matches the invoice number, the OCR reference or a line's description. The
    query is a bound parameter, never SQL.
    """
    # Whether a payment is in flight (billing never imports payments: the reverse relation
    # and its statuses are enough), so the list can say so: one EXISTS per row, no query.
    in_flight = Invoice.objects.filter(
        pk=OuterRef("pk"), payments__status__in=("pending", "unknown")
    )
    invoices = invoices_for_user(user).invoices().annotate(payment_in_flight=Exists(in_flight))
    if status == "open":
        invoices = invoices.filter(status=Invoice.Status.OPEN)
    elif status == "overdue":
        invoices = invoices.filter(status=Invoice.Status.OPEN, due_date__lt=timezone.localdate())
    elif status == "paid":
        invoices = invoices.filter(status=Invoice.Status.PAID)
    query = query.strip()[:MAX_QUERY]
    if query:
        matching_lines = Invoice.objects.filter(lines__description__icontains=query).values("pk")
        invoices = invoices.filter(
            Q(display_number__icontains=query)
            | Q(ocr_reference__icontains=query)
            | Q(pk__in=matching_lines)
        )
    return invoices.order_by("-issue_date", "-pk")


def portal_customer(request: HttpRequest) -> Customer | None:
    """The customer this request is answered for: a portal user whose session is fully
    signed in (the second factor verified when one is owed); None for anyone else, and
    for a customer who has given the password but not yet the second factor."""
    customer = customer_for_user(request.user)
    if customer is None:
        return None
    if not is_session_verified(request) and request_needs_second_factor(request):
        return None
    return customer
