"""The checks a payment or refund request passes before anything is written: the
idempotency key, the amount, the payer, what is left to pay, the smallest card amount,
the step-up. Bad input raises a ``payments.exceptions`` error naming the field."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from billing.models import Invoice
from billing.money import Money
from billing.selectors import customer_for_user
from payments.exceptions import (
    AlreadyPaid,
    IdempotencyKeyReused,
    InvalidPayment,
    InvoiceNotPayable,
    PaymentInProgress,
)
from payments.models import Payment
from payments.services.hot_statements import stored_key
from security.actors import Actor

_PAYABLE = (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)
_KEY_MIN, _KEY_MAX = 8, 255


def check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY_MIN <= len(key.strip()) <= _KEY_MAX:
        raise InvalidPayment(
            _("an idempotency key of %(min)s to %(max)s characters is required")
            % {"min": _KEY_MIN, "max": _KEY_MAX},
            field="idempotency_key",
        )
    key = key.strip()
    if not key.isprintable():
        raise InvalidPayment(_("the idempotency key must be printable"), field="idempotency_key")
    return key


def request_hash(**params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def check_amount(invoice: Invoice, amount: object) -> Money:
    if not isinstance(amount, Money):
        raise InvalidPayment(_("the amount must be a Money value"), field="amount")
    if amount.currency != invoice.currency:
        raise InvalidPayment(
            _("%(currency)s is not the invoice's currency (%(invoice_currency)s)")
            % {"currency": amount.currency, "invoice_currency": invoice.currency},
            field="currency",
        )
    if amount.amount <= 0:
        raise InvalidPayment(
            _("the amount must be more than zero, not %(amount)s") % {"amount": shown(amount)},
            field="amount",
        )
    return amount


def shown(money: Money) -> str:
    """An amount as the reader writes it (errors reach customers in their language)."""
    return money.format(get_language() or "en")


def payer_scope(invoice: Invoice) -> str:
    return f"customer:{invoice.customer_id}"


def check_payer(invoice: Invoice, by: Actor) -> None:
    """A portal user pays only their own customer's invoices (the view's 404 is the first wall)."""
    customer = customer_for_user(by)  # looked up once per request
    if customer is not None and customer.pk != invoice.customer_id:
        raise InvoiceNotPayable(_("no such invoice"), field="invoice")


def replayed(scope: str, key: str, request_hash: str) -> Payment | None:
    stored = stored_key.first(scope, key)
    if stored is None:
        return None
    check_replay(stored.request_hash, request_hash)
    return stored.payment


def check_replay(stored_hash: str, request_hash: str) -> None:
    """The same key with other parameters is refused; with the same, it is a replay."""
    if stored_hash != request_hash:
        raise IdempotencyKeyReused(
            _(
                "this idempotency key was already used for a different payment request"
                " (another invoice, amount or card); use a new key"
            ),
            field="idempotency_key",
        )


def check_minimum(amount: Money, minimums: dict[str, int], *, left: int) -> None:
    """Card testers try tiny amounts: below the currency's minimum a card payment is
    refused, unless it pays the whole amount left."""
    if not isinstance(amount, Money):
        return
    minimum = (minimums or {}).get(amount.currency)
    if minimum and amount.amount < minimum and amount.amount < left:
        raise InvalidPayment(
            _("the smallest card payment is %(minimum)s (or the whole amount left)")
            % {"minimum": shown(Money(minimum, amount.currency))},
            field="amount",
        )


def available_to_pay(locked: Invoice, *, held_state: str | None) -> int:
    """What a new payment may take of the invoice; refused, naming why, when nothing: the
    invoice is not payable, is paid, or has a payment in flight (``held_state``: being
    confirmed or under review), which must be settled before another one starts."""
    number = {"number": locked.display_number or f"#{locked.pk}"}
    if locked.is_credit_note:
        raise InvoiceNotPayable(_("credit note %(number)s takes no payment") % number)
    if locked.status not in _PAYABLE:
        if locked.status == Invoice.Status.PAID:
            raise AlreadyPaid(_("invoice %(number)s is already paid") % number, field="invoice")
        raise InvoiceNotPayable(
            _("invoice %(number)s is %(status)s; it takes no payment")
            % {**number, "status": _(locked.get_status_display()).lower()}
        )
    if held_state == "review":
        raise PaymentInProgress(
            _(
                "invoice %(number)s has a payment under review: nothing more can be paid"
                " until it is decided (nothing has been charged for it yet)"
            )
            % number,
            field="invoice",
        )
    if held_state is not None:
        raise PaymentInProgress(
            _(
                "invoice %(number)s has a payment being confirmed with the card network:"
                " wait for its outcome before paying again"
            )
            % number,
            field="invoice",
        )
    available = locked.amount_due
    if available <= 0:
        raise AlreadyPaid(
            _(
                "invoice %(number)s is already paid (or the rest is held by a payment"
                " being processed)"
            )
            % number,
            field="invoice",
        )
    return available
