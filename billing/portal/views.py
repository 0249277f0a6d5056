"""Portal pages for invoices: list, detail, receipt, account. Thin: select, render.

Every page goes through ``portal_view`` (signed in, linked to a customer, in the
customer's language) and every invoice through ``get_invoice_for_user``, which
answers 404 for anything that is not the customer's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing import services
from billing.documents.selectors import signed_invoice_ids
from billing.exceptions import InvalidInput
from billing.models import Invoice
from billing.portal.decorators import portal_view
from billing.portal.selectors import STATUS_FILTERS, portal_customer, portal_invoices
from billing.portal.shell import remember_language
from billing.selectors import (
    customer_for_user,
    get_invoice_for_user,
    invoice_credit_notes,
    invoice_vat_summary,
)
from security.redirects import UnsafeRedirect, next_path

PAGE_SIZE = 20


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The front door: customers to their invoices, staff to the admin."""
    if request.user.is_authenticated and request.user.is_staff:
        return redirect("admin:index")
    if request.user.is_authenticated and customer_for_user(request.user) is None:
        raise Http404("no portal account")
    return redirect("portal:invoices")


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language switch (en, sv) on every page: a signed-in customer's profile keeps
    the choice (their pages and emails follow it), anyone else's browser keeps it in a
    cookie. An unknown language or a ``next`` off this site is refused; nothing changes."""
    try:
        next_url = next_path(request, reverse("home"))
        code = services.check_language(request.POST.get("language", ""))
    except (UnsafeRedirect, InvalidInput) as exc:
        return render(request, "400.html", {"message": str(exc)}, status=400)
    customer = portal_customer(request)
    if customer is not None:
        services.set_customer_language(customer, language=code, by=request.user, request=request)
    response = redirect(next_url)
    remember_language(response, code)
    return response


@require_GET
@portal_view
def invoice_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "all")
    if status not in STATUS_FILTERS:
        status = "all"
    query = request.GET.get("q", "")[:100]
    page = Paginator(portal_invoices(request.user, status=status, query=query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "portal/invoice_list.html",
        {
            "page": page,
            "status": status,
            "query": query,
            "filters": STATUS_FILTERS,
            "today": timezone.localdate(),
        },
    )


def _documents_context(invoice: Invoice) -> dict[str, Any]:
    """The invoice's payments with their refunds, its credit notes, and which of the
    invoice and its notes have a signed PDF to download (a fixed number of queries)."""
    prefetch_related_objects([invoice], "payments__refunds")
    notes = list(invoice_credit_notes(invoice))
    signed = signed_invoice_ids([invoice.pk, *(note.pk for note in notes)])
    return {"credit_notes": notes, "signed": signed}


@require_GET
@portal_view
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = get_invoice_for_user(request.user, pk)
    if invoice.is_credit_note:
        raise Http404("No such invoice")
    return render(
        request,
        "portal/invoice_detail.html",
        {
            "invoice": invoice,
            "vat_summary": invoice_vat_summary(invoice),
            "seller": invoice.seller_snapshot,
            "today": timezone.localdate(),
            **_documents_context(invoice),
        },
    )


@require_GET
@portal_view
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = get_invoice_for_user(request.user, pk)
    if invoice.status != Invoice.Status.PAID or invoice.is_credit_note:
        raise Http404("No receipt for this invoice")
    return render(
        request,
        "portal/receipt.html",
        {
            "invoice": invoice,
            "seller": invoice.seller_snapshot,
            **_documents_context(invoice),
        },
    )


@require_GET
@portal_view
def account(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/account.html",
        {"customer": request.portal_customer, "languages": settings.LANGUAGES},  # type: ignore[attr-defined]
    )
