"""Saved cards: the one rule for keeping a customer's card, whichever page asks.

* **Saving** a card — on the card page, or by ticking "save this card" while paying —
  needs the customer's consent (nothing is saved unless they ask) and an enrolled
  second factor, verified in the session that saves it
  (``SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS``, on by default). A card saved by a
  password alone would be a card anyone with the password could spend.
* **Deleting** one's own card needs the same level as saving it: a fresh second factor
  (step-up) for a customer who has one. A customer who has none (a card saved before
  the rule, under the setting turned off, or a factor removed since) deletes without
  one: nobody ends up with a card they can never remove.

Both pages (``payments.portal.views``) and ``payments.services.pay_invoice_with_new_card``
call these functions; the vault's ``tokenize`` and ``delete_payment_method`` stay the
primitives underneath.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from billing.selectors import customer_for_user
from payments.exceptions import SavedCardRefused
from payments.step_up import require_step_up
from payments.vault.cards import Card
from payments.vault.entry import EncryptedCard
from payments.vault.exceptions import KeysUnavailable, PaymentMethodGone
from payments.vault.models import PaymentMethod
from payments.vault.selectors import get_payment_methods_for_customer
from payments.vault.services import card_payments_unavailable, delete_payment_method, tokenize
from security.actors import Actor
from security.selectors import customer_may_save_card, has_second_factor, is_session_verified


def may_save_card(user: Any) -> bool:
    """Whether this customer may save a card now (the page says so before they try)."""
    return customer_may_save_card(user=user)


def check_may_save_card(*, by: Actor, request: HttpRequest | None) -> None:
    """Refuse (``keep_card``) a customer who may not save a card: no second factor enrolled,
    or one enrolled but not verified in this session."""
    if not customer_may_save_card(user=by):
        raise SavedCardRefused(
            _(
                "saving a card needs two-step sign-in: turn it on under Account first"
                " (you can still pay without saving the card)"
            ),
            field="keep_card",
        )
    if request is not None and has_second_factor(user=by) and not is_session_verified(request):
        raise SavedCardRefused(
            _("confirm your second factor first to save a card"), field="keep_card"
        )


def save_card(
    card: Card | EncryptedCard, *, by: Actor, request: HttpRequest | None
) -> PaymentMethod:
    """Save a card for the signed-in customer, by the rule above; bad card data raises the
    vault's InvalidCard naming the field, and nothing is stored."""
    customer = customer_for_user(by)
    if customer is None:
        raise SavedCardRefused(_("only a customer can save a card"), field="user")
    check_may_save_card(by=by, request=request)
    try:
        return tokenize(card, customer=customer, by=by, saved=True)
    except KeysUnavailable as fault:  # the operator's trouble: one calm sentence here
        raise card_payments_unavailable(
            fault, operation="tokenize", by=by, request=request
        ) from None


def delete_saved_card(
    card: PaymentMethod | int, *, by: Actor, request: HttpRequest | None
) -> PaymentMethod:
    """Delete one of the customer's own saved cards (its ciphertext is erased): a fresh second
    factor when the customer has one. Another customer's card, or one already deleted, is
    refused (``card``) as if it did not exist."""
    customer = customer_for_user(by)
    card_id = card.pk if isinstance(card, PaymentMethod) else card
    method = (
        get_payment_methods_for_customer(customer).filter(pk=card_id).first()
        if customer is not None and isinstance(card_id, int)
        else None
    )
    if method is None:
        raise SavedCardRefused(_("no such saved card"), field="card")
    if has_second_factor(user=by):
        require_step_up(request, by, to=_("delete a saved card"), refused=SavedCardRefused)
    try:
        return delete_payment_method(method, by=by)
    except PaymentMethodGone:  # deleted by a concurrent request meanwhile
        raise SavedCardRefused(_("no such saved card"), field="card") from None


def forget_unsaved_card(method: PaymentMethod | None, *, by: Actor) -> None:
    """Erase a card tokenized for one payment only (its payer did not keep it); a saved card
    or one already erased is left as it is."""
    if method is None or method.saved:
        return
    with contextlib.suppress(PaymentMethodGone):
        delete_payment_method(method, by=by)
