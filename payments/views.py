"""Portal pages of payments: the card-entry page (end-to-end encrypted in the browser).

The page's inputs for number, expiry and CVC have no ``name``: the browser never
submits them. static/payments/card-entry.js encrypts them with the vault's
current card-entry public key and submits only ``card_payload`` (ciphertext
and key id). Without JavaScript nothing is sent and the page says why.
"""

from __future__ import annotations

import base64
import contextlib

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from billing.portal.decorators import portal_view
from payments.vault.entry import EncryptedCard, nonce_for_request
from payments.vault.exceptions import InvalidCard, PaymentMethodGone
from payments.vault.keys import current_entry_key
from payments.vault.selectors import (
    get_payment_method_for_user,
    get_payment_methods_for_customer,
    get_portal_customer,
)
from payments.vault.services import delete_payment_method, tokenize
from security.decorators import step_up_required
from security.selectors import customer_may_save_card

CARD_FIELDS = ("number", "expiry", "cvc")


@require_http_methods(["GET", "POST"])
@portal_view
def add_card(request: HttpRequest) -> HttpResponse:
    """Save a card for the signed-in portal user's customer (MFA first, when policy says so);
    in the customer's language, as every portal page."""
    customer = get_portal_customer(request.user)
    errors: dict[str, str] = {}
    mfa_needed = not customer_may_save_card(user=request.user)
    if mfa_needed:
        return render(
            request,
            "payments/add_card.html",
            {"customer": customer, "mfa_needed": True, "cards": []},
            status=403 if request.method == "POST" else 200,
        )
    if request.method == "POST":
        try:
            method = tokenize(
                EncryptedCard.posted(request, request.POST.get("card_payload", "")),
                customer=customer,
                by=request.user,
            )
        except InvalidCard as exc:
            errors[exc.field if exc.field in CARD_FIELDS else "card"] = exc.message
        else:
            messages.success(request, _("Saved %(card)s.") % {"card": method})
            return redirect("payments:add_card")
    entry_key = current_entry_key()
    return render(
        request,
        "payments/add_card.html",
        {
            "customer": customer,
            "cards": get_payment_methods_for_customer(customer),
            "entry_nonce": nonce_for_request(request),
            "entry_kid": entry_key.kid,
            "entry_public_key": base64.b64encode(bytes(entry_key.public_key_der)).decode(),
            "errors": errors,
        },
        status=400 if errors else 200,
    )


@require_POST
@portal_view
@step_up_required
def delete_card(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete one of the user's cards (fresh second factor): its ciphertext is erased."""
    method = get_payment_method_for_user(request.user, pk)
    with contextlib.suppress(PaymentMethodGone):  # a double submit: already deleted
        delete_payment_method(method, by=request.user)
    messages.success(request, _("Deleted %(card)s.") % {"card": method})
    return redirect("payments:add_card")
