"""The portal's paying pages: pay an invoice, the payment's outcome, saved cards, security.

They live in payments/ because billing never imports payments. Thin: parse the
form, select with the access check, one service call, render. The card form is
the vault's end-to-end encrypted one (static/payments/card-entry.js): the web
tier only ever receives ``card_payload`` (ciphertext).
"""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from billing.documents.selectors import signed_invoice_ids
from billing.exceptions import BillingError
from billing.models import Invoice
from billing.money import Money, parse_decimal
from billing.portal.decorators import portal_view
from billing.selectors import get_invoice_for_user
from payments import services
from payments.exceptions import (
    CardPaymentsUnavailable,
    PaymentsError,
    SavedCardRefused,
    StepUpForPayment,
)
from payments.gateways import get_gateway
from payments.models import Payment
from payments.saved_cards import delete_saved_card, may_save_card, save_card
from payments.selectors import (
    get_payment_for_user,
    get_refund_for_user,
    get_security_facts,
    payment_in_flight,
    refunds_of,
    saved_cards_for_user,
    saved_cards_list,
)
from payments.vault.entry import EncryptedCard, nonce_for_request
from payments.vault.services import card_entry_key
from security.selectors import has_second_factor

CARD_FIELDS = ("number", "expiry", "cvc")


class PayForm(forms.Form):
    """One payment attempt: the amount, the saved card or an encrypted new card, the key."""

    amount = forms.CharField(label=gettext_lazy("Amount to pay"), max_length=30)
    # The id of one of the customer's saved cards: the service reads it under the
    # invoice's lock and refuses any other (the page lists the cards itself).
    payment_method = forms.IntegerField(
        label=gettext_lazy("Saved card"), required=False, min_value=1, widget=forms.RadioSelect
    )
    card_payload = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    keep_card = forms.BooleanField(label=gettext_lazy("Save this card for later"), required=False)
    idempotency_key = forms.CharField(min_length=8, max_length=255, widget=forms.HiddenInput)

    def clean_amount(self) -> Decimal:
        """A decimal amount as the reader writes it: "1 000,50" (Swedish), "1,000.50"
        (English) and "1000.50" all work."""
        try:
            return parse_decimal(self.cleaned_data["amount"], get_language() or "en")
        except BillingError:
            raise forms.ValidationError(_("Enter an amount such as 1000.00.")) from None


def _amount_of(invoice: Invoice, value: Decimal) -> Money:
    try:
        return Money.from_decimal(value, invoice.currency)
    except (BillingError, InvalidOperation) as exc:
        raise PaymentsError(
            _("Enter an amount in %(currency)s.") % {"currency": invoice.currency}, field="amount"
        ) from exc


NO_ENTRY_KEY = {"entry_nonce": "", "entry_kid": "", "entry_public_key": ""}


def _entry_key_context(request: HttpRequest) -> dict[str, str]:
    """The new-card form's key (CardPaymentsUnavailable when the vault's keys fail)."""
    entry_key = card_entry_key(by=request.user, request=request)
    return {
        "entry_nonce": nonce_for_request(request),
        "entry_kid": entry_key.kid,
        "entry_public_key": base64.b64encode(bytes(entry_key.public_key_der)).decode(),
    }


def _pay_page_context(
    request: HttpRequest, invoice: Invoice, entry: dict[str, str]
) -> dict[str, Any]:
    """What the pay page shows besides its form: saved cards, the saving rule, the test cards,
    the new-card form's key (``entry``; empty while the vault's keys fail)."""
    return {
        "invoice": invoice,
        "cards": saved_cards_list(request.user),
        "may_save_card": may_save_card(request.user),
        "test_cards": getattr(get_gateway(), "test_cards", ()),
        **entry,
    }


@require_http_methods(["GET", "POST"])
@portal_view
def pay(request: HttpRequest, pk: int) -> HttpResponse:
    """Pay an invoice with a saved card or a new card entered through the encrypted form;
    while a payment on it is in flight, its state instead of a second payment."""
    invoice = get_invoice_for_user(request.user, pk, with_lines=False)
    if invoice.is_credit_note:
        raise Http404("Nothing to pay")
    # A POST goes on to the service even when nothing is due: a replayed request
    # must get its original answer, and any other one a clear "already paid".
    if request.method == "GET":
        in_flight = payment_in_flight(invoice)
        if in_flight is not None:
            return render(request, "portal/pay.html", {"invoice": invoice, "in_flight": in_flight})
        if invoice.amount_due <= 0:
            if invoice.status == Invoice.Status.PAID:
                return redirect("portal:receipt", pk=invoice.pk)
            raise Http404("Nothing to pay")
    if request.method == "POST":
        form = PayForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                payment = _submit(request, invoice, form.cleaned_data)
            except CardPaymentsUnavailable as exc:  # the vault's keys fail: nothing was charged
                form.add_error(None, exc.message)
                status = 503
            except StepUpForPayment:
                # A fraud rule asks for a fresh second factor: confirm it, then back to pay
                # (nothing was held or charged; docs/fraud.md, "Step-up").
                query = urlencode({"next": request.path})
                return HttpResponseRedirect(f"{reverse('security:step_up')}?{query}")
            except PaymentsError as exc:
                target = exc.field if exc.field in form.fields else None
                form.add_error(target, exc.message)
            else:
                return redirect("portal_pay:payment", pk=payment.pk)
    else:
        status = 200
        cards = saved_cards_list(request.user)
        form = PayForm(
            initial={
                "amount": str(invoice.due.as_decimal()),
                "idempotency_key": uuid.uuid4().hex,
                # Saving is the customer's choice, never the default (consent).
                "keep_card": False,
                "payment_method": cards[0].pk if cards else None,
            }
        )
    entry = NO_ENTRY_KEY
    if status != 503:
        try:
            entry = _entry_key_context(request)
        except CardPaymentsUnavailable as exc:  # no form to encrypt to: say so, calmly
            if form.is_bound:
                form.add_error(None, exc.message)
            else:
                messages.error(request, exc.message)
            status = 503
    return render(
        request,
        "portal/pay.html",
        {"form": form, **_pay_page_context(request, invoice, entry)},
        status=status,
    )


def _submit(request: HttpRequest, invoice: Invoice, data: dict[str, Any]) -> Payment:
    amount = _amount_of(invoice, data["amount"])
    if data["card_payload"]:
        return services.pay_invoice_with_new_card(
            invoice,
            amount=amount,
            card=EncryptedCard.posted(request, data["card_payload"]),
            keep_card=data["keep_card"],
            idempotency_key=data["idempotency_key"],
            by=request.user,
            request=request,
        )
    if data["payment_method"] is None:
        raise PaymentsError(_("Choose a saved card or enter a new one."), field="payment_method")
    return services.pay_invoice(
        invoice,
        amount=amount,
        payment_method=data["payment_method"],
        idempotency_key=data["idempotency_key"],
        by=request.user,
        request=request,
    )


@require_GET
@portal_view
def payment(request: HttpRequest, pk: int) -> HttpResponse:
    """The outcome of one payment attempt (pending and unknown ones say so, and why); for a
    captured payment, its receipt, with its refunds."""
    found = get_payment_for_user(request.user, pk)
    return render(
        request,
        "portal/payment.html",
        {
            "payment": found,
            "invoice": found.invoice,
            "seller": found.invoice.seller_snapshot,
            "refunds": refunds_of(found),
            "signed": signed_invoice_ids([found.invoice_id]),
        },
    )


@require_GET
@portal_view
def refund(request: HttpRequest, pk: int) -> HttpResponse:
    """The receipt of one refund: how much, on which payment, and what became of the invoice
    (a credit note, or the amount owed again)."""
    found = get_refund_for_user(request.user, pk)
    invoice = found.payment.invoice
    signed = signed_invoice_ids([found.credit_note_id]) if found.credit_note_id else set()
    return render(
        request,
        "portal/refund.html",
        {"refund": found, "payment": found.payment, "invoice": invoice, "signed": signed},
    )


class CardForm(forms.Form):
    """A card to save: only the browser's ciphertext (the card inputs have no name)."""

    card_payload = forms.CharField(max_length=2000, widget=forms.HiddenInput)


@require_http_methods(["GET", "POST"])
@portal_view
def cards(request: HttpRequest) -> HttpResponse:
    """Saved cards (brand, last 4 and expiry only), and adding one: the same encrypted card
    form and the same rule for saving (``payments.saved_cards``) as "save this card" when paying."""
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = CardForm(request.POST)
        if not form.is_valid():
            errors["card"] = _("Enter the card's number, expiry and security code.")
        else:
            try:
                method = save_card(
                    EncryptedCard.posted(request, form.cleaned_data["card_payload"]),
                    by=request.user,
                    request=request,
                )
            except CardPaymentsUnavailable as exc:  # the vault's keys fail: nothing stored
                errors["card"], status = exc.message, 503
            except PaymentsError as exc:  # the vault's InvalidCard too
                errors[exc.field if exc.field in CARD_FIELDS else "card"] = exc.message
            else:
                messages.success(
                    request, _("The card ending in %(last4)s was saved.") % {"last4": method.last4}
                )
                return redirect("portal_pay:cards")
    allowed = may_save_card(request.user)
    entry = NO_ENTRY_KEY
    if allowed and status != 503:
        try:
            entry = _entry_key_context(request)
        except CardPaymentsUnavailable as exc:  # no form to encrypt to: say so, calmly
            errors["card"], status = exc.message, 503
    if errors and status == 200:
        status = 400
    return render(
        request,
        "portal/cards.html",
        {
            "cards": saved_cards_for_user(request.user),
            "may_save_card": allowed,
            "has_second_factor": has_second_factor(user=request.user),
            "errors": errors,
            **entry,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@portal_view
def delete_card(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a saved card (its ciphertext is erased), after a page that asks first: with a
    fresh second factor when the customer has one (``payments.saved_cards``), so nobody
    keeps a card they cannot delete."""
    found = saved_cards_for_user(request.user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such card")
    if request.method == "GET":
        return render(request, "portal/delete_card.html", {"card": found})
    try:
        method = delete_saved_card(pk, by=request.user, request=request)
    except SavedCardRefused as exc:
        if exc.field == "step_up":  # back to the question once the factor is confirmed
            query = urlencode({"next": reverse("portal_pay:delete_card", args=[pk])})
            return redirect(f"{reverse('security:step_up')}?{query}")
        raise Http404("No such card") from exc  # deleted meanwhile (a double submit)
    messages.success(
        request, _("The card ending in %(last4)s was deleted.") % {"last4": method.last4}
    )
    return redirect("portal_pay:cards")


@require_GET
@portal_view
def security_page(request: HttpRequest) -> HttpResponse:
    """ "How we protect your payments", with live facts from the configuration."""
    return render(request, "portal/security.html", {"facts": get_security_facts(request.user)})
