"""The single-use link landing: after login (and second factor), open the invoice once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from billing.delivery import services
from billing.delivery.exceptions import LinkExpired, LinkRefused, LinkUsed
from billing.delivery.models import Delivery
from security.decorators import mfa_required


@mfa_required
@require_GET
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    """Use the link (refused when unknown, used, expired or another customer's), then show
    the invoice (or, for a receipt's link, its receipt) in the portal; a credit note on a
    page of its own with its signed PDF."""
    try:
        link = services.open_invoice_link(token, user=request.user)
    except LinkRefused as exc:
        status = 410 if isinstance(exc, LinkExpired | LinkUsed) else 404
        return render(request, "delivery/link_refused.html", {"reason": exc.message}, status=status)
    invoice = link.invoice
    if invoice.is_credit_note:  # the portal lists invoices only: the credit note's own page
        return render(request, "delivery/link_opened.html", {"invoice": invoice})
    receipt = link.delivery is not None and link.delivery.kind == Delivery.Kind.RECEIPT
    page = "portal:receipt" if receipt else "portal:invoice"
    return HttpResponseRedirect(reverse(page, args=[invoice.pk]))
