"""Every payments state change: card payments, their reconciliation, refunds, key purge.

A card payment runs in three steps, so that the gateway is never called inside
a database transaction and an invoice is never captured beyond its amount due:

1. **reserve** (one transaction, under the invoice's row lock): check the
   idempotency key, check the amount against what is left to pay *minus the
   payments still in flight*, create the PENDING payment (it holds its amount)
   and reveal its card for the gateway account (one commit for all of it);
2. **charge** (no transaction): call the gateway with the payment's own acquirer
   idempotency key;
3. **settle** (one transaction): record the answer. A capture goes to the
   invoice through ``billing.services.record_payment_amount``; if the invoice
   can no longer take it (voided or credited meanwhile), the charge is refunded
   at once (compensation), so no acquirer charge is left uncompensated.

A lost answer leaves the payment UNKNOWN (still holding its amount) until
``reconcile_payment`` asks the gateway by the same key. Bank transfers are
recorded by ``payments.reconciliation``.

Risk: in step 1 every card attempt goes through ``payments.fraud.assess_card_payment``
(under the same lock). Allowed: charged as above. Blocked: recorded FAILED
(``risk_blocked``) and never sent to the gateway. Held for review: PENDING, holding
its amount, not charged until a fraud analyst approves it
(``payments.fraud.decide_risk_review``); reconciliation leaves it alone meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import secrets
import unicodedata
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Q, Subquery, Sum
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from audit import SYSTEM, AuditEntry, record
from audit.services import PreparedEvent, append_prepared, execute_recorded, prepare_event
from billing.exceptions import BillingError
from billing.models import Invoice
from billing.money import Money
from billing.selectors import customer_for_user
from billing.services import (
    record_payment_amount,
    record_refund_reopening,
    record_refund_with_credit_note,
)
from payments.exceptions import (
    AlreadyPaid,
    AmountExceedsDue,
    IdempotencyKeyReused,
    InvalidPayment,
    InvoiceNotPayable,
    PaymentInProgress,
    PaymentsError,
    RefundRefused,
)
from payments.fraud.models import RiskDecision, RiskHold
from payments.fraud.rules import FAILURE_WINDOW, RiskAssessment, assess_card_payment
from payments.fraud.selectors import (
    facts_of,
    get_risk_settings,
    history_annotations,
    threshold_annotations,
)
from payments.freeze import check_card_payments_open
from payments.gateways import ChargeResult, GatewayError, GatewayTimeout, get_gateway
from payments.models import IdempotencyKey, Payment, PaymentMethod, Refund
from payments.saved_cards import check_may_save_card, forget_unsaved_card
from payments.selectors import held_amounts, in_flight_state
from payments.vault.entry import EncryptedCard
from payments.vault.exceptions import KeysUnavailable, PaymentMethodGone, VaultError
from payments.vault.services import (
    RevealedCard,
    card_payments_unavailable,
    delete_payment_method,
    report_key_fault,
    reveal_card,
    tokenize,
)
from security.compiled import compiled, hot, mark_inserted
from security.compiled import insert as compiled_insert
from security.compiled import insert_sql as compiled_insert_sql
from security.compiled import update as compiled_update
from security.compiled import update_sql as compiled_update_sql
from security.net import client_address

logger = logging.getLogger(__name__)

Actor = Any
Status = Payment.Status

REFUND_PERMISSION = "payments.refund_payment"
_PAYABLE = (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)
_KEY_MIN, _KEY_MAX = 8, 255


# --- helpers -------------------------------------------------------------------------


def _check_key(key: object) -> str:
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


def _request_hash(**params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def _check_amount(invoice: Invoice, amount: object) -> Money:
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
            _("the amount must be more than zero, not %(amount)s") % {"amount": _shown(amount)},
            field="amount",
        )
    return amount


def _shown(money: Money) -> str:
    """An amount as the reader writes it (errors reach customers in their language)."""
    return money.format(get_language() or "en")


def _scope(invoice: Invoice) -> str:
    return f"customer:{invoice.customer_id}"


def _check_payer(invoice: Invoice, by: Actor) -> None:
    """A portal user pays only their own customer's invoices (the view's 404 is the first wall)."""
    customer = customer_for_user(by)  # looked up once per request
    if customer is not None and customer.pk != invoice.customer_id:
        raise InvoiceNotPayable(_("no such invoice"), field="invoice")


def held_amount(invoice: Invoice) -> int:
    """What payments still in flight (pending, unknown) hold against the invoice."""
    return held_amounts([invoice.pk]).get(invoice.pk, 0)


# The card payment's reads, compiled by the ORM once per process (security.compiled).
# The invoice's locks leave out its frozen snapshots (Invoice.DOCUMENT_FIELDS).
@compiled(str, str)
def _stored_key(scope: str, key: str) -> Any:
    return IdempotencyKey.objects.select_related("payment").filter(scope=scope, key=key)[:1]


@compiled(int)
def _invoice_locked(pk: int) -> Any:
    locked = Invoice.objects.select_for_update(of=("self",)).filter(pk=pk)
    return locked.defer(*Invoice.DOCUMENT_FIELDS)


@compiled(int)
def _payment_locked(pk: int) -> Any:
    """The payment and its invoice, both locked in one statement (payment first, then
    invoice: the order every settle and refund takes)."""
    return (
        Payment.objects.select_for_update(of=("self", "invoice"))
        .select_related("invoice")
        .filter(pk=pk)
        .defer(*(f"invoice__{name}" for name in Invoice.DOCUMENT_FIELDS))
    )


@compiled(str)
def _user_named(username: str) -> Any:
    return get_user_model().objects.filter(username=username)


@compiled(int, int, datetime.datetime, int, str, str, str, str)
def _facts_after_lock(
    card_id: int,
    customer_id: int,
    since: datetime.datetime,
    invoice_id: int,
    scope: str,
    key: str,
    gateway_username: str,
    address: str,
) -> Any:
    stored = IdempotencyKey.objects.filter(scope=scope, key=key)
    gateway = get_user_model().objects.filter(username=gateway_username, is_active=True)
    # The card's ciphertext and key are the vault's to read (reveal_card): not read here,
    # which also keeps the statement within psycopg's query cache (a test checks).
    card = PaymentMethod.objects.defer("ciphertext", "data_key", "deleted_at")
    return card.filter(pk=card_id, customer_id=customer_id).annotate(
        **threshold_annotations(),
        **history_annotations(OuterRef("fingerprint"), customer_id, since, address),
        # No "held" total: a payment in flight refuses the attempt (held_state), so what
        # payments in flight hold is always 0 when one goes ahead.
        held_state=Subquery(in_flight_state(invoice_id)),
        stored_hash=Subquery(stored.values("request_hash")[:1]),
        stored_payment=Subquery(stored.values("payment_id")[:1]),
        gateway_account=Subquery(gateway.values("pk")[:1]),
    )


def _attempt_facts(
    locked: Invoice, card_id: int, scope: str, key: str, address: str
) -> PaymentMethod | None:
    """One statement: the card (one of the invoice's customer's, else None), annotated
    with the risk facts, the amount payments in flight hold on the invoice, the request
    stored under the idempotency key (``stored_hash`` None if none) and the gateway
    account's id (None if there is no active one yet)."""
    since = timezone.now() - FAILURE_WINDOW
    arguments = (
        card_id,
        locked.customer_id,
        since,
        locked.pk,
        scope,
        key,
        settings.PAYMENTS_GATEWAY_ACCOUNT,
        address,
    )
    card = _facts_after_lock.first(*arguments)
    if card is not None and card.max_failed_attempts is None:
        # A fresh database: the thresholds' row is created with the defaults.
        get_risk_settings()
        card = _facts_after_lock.first(*arguments)
    return card


def _replayed(scope: str, key: str, request_hash: str) -> Payment | None:
    stored = _stored_key.first(scope, key)
    if stored is None:
        return None
    _check_replay(stored.request_hash, request_hash)
    return stored.payment


def _check_replay(stored_hash: str, request_hash: str) -> None:
    """The same key with other parameters is refused; with the same, it is a replay."""
    if stored_hash != request_hash:
        raise IdempotencyKeyReused(
            _(
                "this idempotency key was already used for a different payment request"
                " (another invoice, amount or card); use a new key"
            ),
            field="idempotency_key",
        )


# --- the gateway account -------------------------------------------------------------


# This process's gateway account, by username: reused only while a statement the card
# payment runs anyway (its facts) reads the same id for that username, active.
_gateway_accounts: dict[str, Any] = {}


def _gateway_account(account_id: int | None) -> Any:
    """The gateway account, ``account_id`` being its id just read in the caller's
    transaction: the one kept in this process if it is that account, else read anew.
    Its permission is checked live by the reveal itself."""
    username = settings.PAYMENTS_GATEWAY_ACCOUNT
    kept = _gateway_accounts.get(username)
    if kept is not None and account_id is not None and kept.pk == account_id:
        return kept
    account = get_gateway_account()
    _gateway_accounts[username] = account
    return account


def get_gateway_account() -> Any:
    """The service account that reveals cards for the gateway call (created on first use)."""
    user_model = get_user_model()
    username = settings.PAYMENTS_GATEWAY_ACCOUNT
    user = _user_named.first(username)
    if user is not None:
        return user
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": False, "is_active": True}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="payments", codename="reveal_card")
            )
            record("payments.gateway_account_created", actor=SYSTEM, obj=user, username=username)
    return user


# --- card payments -------------------------------------------------------------------


def pay_invoice(
    invoice: Invoice,
    *,
    amount: Money,
    payment_method: PaymentMethod | int,
    idempotency_key: str,
    by: Actor,
    request: HttpRequest | None = None,
) -> Payment:
    """Charge a saved card for an invoice: once per idempotency key, never beyond the amount due.

    ``payment_method``: the card, or its id; it is read (again) under the invoice's lock,
    and must be one of the invoice's customer's cards. A replay with the same key and
    parameters returns the first payment (asking the gateway again if its outcome is
    still unknown); the same key with other parameters raises IdempotencyKeyReused.
    Declines come back as a FAILED payment.
    """
    check_card_payments_open()  # an incident's containment may have frozen them
    key = _check_key(idempotency_key)
    card_id = payment_method.pk if isinstance(payment_method, PaymentMethod) else payment_method
    if not isinstance(card_id, int) or isinstance(card_id, bool):
        raise InvalidPayment(_("choose a saved card"), field="payment_method")
    fingerprint = _request_hash(
        invoice=invoice.pk,
        amount=getattr(amount, "amount", None),
        currency=getattr(amount, "currency", None),
        card=card_id,
    )
    try:
        payment, created, card = _reserve_card_payment(
            invoice,
            amount=amount,
            card_id=card_id,
            key=key,
            request_hash=fingerprint,
            by=by,
            request=request,
        )
    except KeysUnavailable as fault:  # the reservation rolled back: nothing is held
        raise card_payments_unavailable(fault, operation="reveal", by=by, request=request) from None
    if not created:
        if not payment.is_final:
            return reconcile_payment(payment, by=SYSTEM)
        return payment
    return charge_payment(payment, by=by, card=card)


def pay_invoice_with_new_card(
    invoice: Invoice,
    *,
    amount: Money,
    card: EncryptedCard,
    keep_card: bool,
    idempotency_key: str,
    by: Actor,
    request: HttpRequest | None = None,
) -> Payment:
    """Tokenize a card sent encrypted by the browser, then pay with it as ``pay_invoice`` does.

    A replay of the same key returns the first payment without tokenizing again.
    ``keep_card``: the payer asked to save the card, which follows the one rule for
    saving cards (``payments.saved_cards``: a second factor; refused as ``keep_card`` before
    anything is stored or charged). Without it the card is never a saved card (not
    listed, not offered) and is erased from the vault once the outcome is known (its
    brand and last 4 stay on the payment). A refused payment keeps no card either way.
    """
    check_card_payments_open()  # before the card is opened or stored
    key = _check_key(idempotency_key)
    fingerprint = _request_hash(
        invoice=invoice.pk,
        amount=getattr(amount, "amount", None),
        currency=getattr(amount, "currency", None),
        card="new",
    )
    replay = _replayed(_scope(invoice), key, fingerprint)
    if replay is not None:
        return replay if replay.is_final else reconcile_payment(replay, by=SYSTEM)
    _check_payer(invoice, by)
    _check_amount(invoice, amount)
    # Before the card is opened and stored: a tiny amount is refused at once (the reserve
    # step checks again under the invoice's lock).
    _check_minimum(amount, get_risk_settings().min_card_amounts, left=invoice.amount_due)
    if keep_card:
        check_may_save_card(by=by, request=request)
    try:
        method = tokenize(card, customer=invoice.customer, by=by, saved=keep_card)
    except KeysUnavailable as fault:
        raise card_payments_unavailable(
            fault, operation="tokenize", by=by, request=request
        ) from None
    try:
        payment, created, revealed = _reserve_card_payment(
            invoice,
            amount=amount,
            card_id=method.pk,
            key=key,
            request_hash=fingerprint,
            by=by,
            request=request,
            forget_card=not keep_card,
        )
    except Exception as exc:
        # Refused (bad amount, a payment in flight, a reused key...): nothing is kept.
        with contextlib.suppress(PaymentMethodGone):
            delete_payment_method(method, by=by)
        if isinstance(exc, KeysUnavailable):
            raise card_payments_unavailable(
                exc, operation="reveal", by=by, request=request
            ) from None
        raise
    if created and payment.is_final:  # blocked by the risk rules: never charged
        forget_unsaved_card(method, by=SYSTEM)
    elif created:
        payment = charge_payment(payment, by=by, card=revealed)  # a final settle forgets it
    return payment


def _reserve_card_payment(
    invoice: Invoice,
    *,
    amount: Money,
    card_id: int,
    key: str,
    request_hash: str,
    by: Actor,
    request: HttpRequest | None,
    forget_card: bool = False,
) -> tuple[Payment, bool, Revealed]:
    """Step 1: under the invoice's row lock, hold the amount as a PENDING payment, and
    reveal its card for the charge in the same transaction (one commit, not three:
    each commit waits for a WAL flush); a refused reveal is returned, not raised."""
    scope = _scope(invoice)
    try:
        with transaction.atomic():
            # The lock serializes every attempt on this invoice: "what is left to pay"
            # below cannot change until this transaction ends (no overpayment race).
            locked = _invoice_locked.first(invoice.pk)
            if locked is None:
                raise InvoiceNotPayable(_("no such invoice"), field="invoice")
            # Read after the lock (a statement of its own, with its own snapshot): the
            # card, the stored key, what payments in flight hold, and the risk facts.
            address = client_address(request) or ""
            payment_method = _attempt_facts(locked, card_id, scope, key, address)
            if payment_method is None:  # not a card of the invoice's customer
                _check_payer(locked, by)
                raise InvalidPayment(_("choose one of your saved cards"), field="payment_method")
            facts = vars(payment_method)  # the annotations of _facts_after_lock
            if facts["stored_hash"] is not None:
                _check_replay(facts["stored_hash"], request_hash)
                return Payment.objects.get(pk=facts["stored_payment"]), False, None
            _check_payer(locked, by)
            money = _check_amount(locked, amount)
            if payment_method.status != PaymentMethod.Status.ACTIVE:
                raise InvalidPayment(_("this card was deleted"), field="payment_method")
            if not payment_method.saved and not forget_card:
                # A card its payer did not keep serves the one payment it was typed for.
                raise InvalidPayment(_("choose one of your saved cards"), field="payment_method")
            available = _available_to_pay(locked, held_state=facts["held_state"])
            if money.amount > available:
                raise AmountExceedsDue(
                    _("%(amount)s is more than is left to pay (%(left)s)")
                    % {"amount": _shown(money), "left": _shown(locked.money(available))},
                    field="amount",
                )
            known = facts_of(facts)
            _check_minimum(money, known.min_card_amounts, left=available)
            risk = assess_card_payment(
                payment_method=payment_method,
                customer_id=locked.customer_id,
                amount=money,
                facts=known,
                address=address,
            )
            if blocked := risk.decision == RiskDecision.BLOCK:
                _hold_after_burst(risk, customer_id=locked.customer_id, address=address, by=by)
            payment = Payment(
                invoice=locked,
                amount=money.amount,
                currency=money.currency,
                method=Payment.Method.CARD,
                status=Status.FAILED if blocked else Status.PENDING,
                payment_method=payment_method,
                card_brand=payment_method.brand,
                card_last4=payment_method.last4,
                gateway=get_gateway().name,
                idempotency_key="pay_" + secrets.token_hex(16),
                risk_decision=risk.decision,
                risk_reasons=risk.reasons,
                failure_code="risk_blocked" if blocked else "",
                failure_message="stopped by the risk rules; nothing was charged" if blocked else "",
                settled_at=timezone.now() if blocked else None,
                forget_card=forget_card,
                created_by=by if isinstance(by, get_user_model()) else None,
                client_ip=address,
            )
            stored = IdempotencyKey(
                scope=scope, key=key, request_hash=request_hash, created_at=timezone.now()
            )
            event = prepare_event(
                "payment.blocked" if blocked else "payment.started",
                actor=by,
                object_type=Payment._meta.label_lower,
                object_id=None,  # the payment's id, given by the database
                request=request,
                details={
                    "invoice_id": locked.pk,
                    "amount": money.amount,
                    "currency": money.currency,
                    "method": payment.method,
                    "card": f"{payment_method.brand} {payment_method.last4}",
                    "risk": risk.decision,
                    **({"rules": [r["rule"] for r in risk.reasons]} if risk.reasons else {}),
                },
            )
            # The reveal before the insert: each writes an audit event, and the first
            # one takes the audit chain's lock until the commit; the other payments
            # wait for it, so as little as possible runs between it and the commit.
            card = _reveal_for_charge(payment, account_id=facts["gateway_account"])
            if isinstance(card, KeysUnavailable):
                raise card  # no payment is reserved: the vault's keys fail (the caller says)
            _insert_reserved(payment, stored, event)
    except IntegrityError:
        # The same key raced in for another invoice: the stored request decides.
        replay = _replayed(scope, key, request_hash)
        if replay is None:
            raise
        return replay, False, None
    return payment, True, card


def _check_minimum(amount: Money, minimums: dict[str, int], *, left: int) -> None:
    """Card testers try tiny amounts: below the currency's minimum a card payment is
    refused, unless it pays the whole amount left."""
    if not isinstance(amount, Money):
        return
    minimum = (minimums or {}).get(amount.currency)
    if minimum and amount.amount < minimum and amount.amount < left:
        raise InvalidPayment(
            _("the smallest card payment is %(minimum)s (or the whole amount left)")
            % {"minimum": _shown(Money(minimum, amount.currency))},
            field="amount",
        )


def _hold_after_burst(risk: RiskAssessment, *, customer_id: int, address: str, by: Actor) -> None:
    """Open the holds a card-testing rule asked for (in the reserve transaction): every
    later attempt of the customer or from the address is blocked until an analyst lifts
    it. Audited ``fraud.payments_held``."""
    for reason in risk.reasons:
        kind = reason.get("hold")
        if kind not in (RiskHold.Kind.CUSTOMER, RiskHold.Kind.ADDRESS):
            continue
        held = (
            {"customer_id": customer_id} if kind == RiskHold.Kind.CUSTOMER else {"address": address}
        )
        if RiskHold.objects.filter(kind=kind, lifted_at__isnull=True, **held).exists():
            continue
        hold = RiskHold.objects.create(
            kind=kind, rule=reason["rule"], created_at=timezone.now(), **held
        )
        record(
            "fraud.payments_held",
            actor=SYSTEM,
            obj=hold,
            kind=kind,
            customer_id=customer_id if kind == RiskHold.Kind.CUSTOMER else None,
            address=address if kind == RiskHold.Kind.ADDRESS else "",
            rule=reason["rule"],
            cards=reason.get("cards"),
            by=getattr(by, "pk", None),
        )


# The idempotency key row, taking the payment's id from ``p`` (_insert_reserved).
_KEY_INSERT = (
    'INSERT INTO "payments_idempotencykey" ("scope", "key", "request_hash", "created_at",'
    ' "payment_id") SELECT %s::varchar, %s::varchar, %s::varchar, %s::timestamptz, p.id FROM p'
)


def _insert_reserved(payment: Payment, stored: IdempotencyKey, event: PreparedEvent) -> None:
    """Write the reserved payment, its idempotency key and its audit event.

    On PostgreSQL in one statement (``WITH p AS (INSERT ...)``, the key and the event
    taking the payment's id from it), as the vault writes a card; elsewhere in three.
    """
    if connection.vendor != "postgresql":
        compiled_insert(payment)
        stored.payment = payment
        compiled_insert(stored)
        append_prepared(event, str(payment.pk))
        return
    insert, params = compiled_insert_sql(payment)
    call, event_params = event.append_sql("p.id::text")
    with connection.cursor() as cursor:
        cursor.execute(
            hot(
                f"WITH p AS ({insert}), k AS ({_KEY_INSERT})"  # noqa: S608 (built from names)
                f" SELECT p.id FROM p CROSS JOIN LATERAL {call} AS a"
            ),
            [
                *params,
                stored.scope,
                stored.key,
                stored.request_hash,
                stored.created_at,
                *event_params,
            ],
        )
        mark_inserted(payment, cursor.fetchone()[0], using=connection.alias)
    stored.payment = payment


def _available_to_pay(locked: Invoice, *, held_state: str | None) -> int:
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


# What a payment charged later (a risk approval, a reconciliation) records when the vault's
# keys fail; the detail is in the audit event and the staff alert.
KEYS_UNAVAILABLE = "the vault's keys were unavailable (see the security alert); nothing was charged"

Revealed = RevealedCard | VaultError | None
"""A card revealed for a charge, the vault's refusal, or None (nothing to charge)."""


def _reveal_for_charge(payment: Payment, *, account_id: int | None = None) -> Revealed:
    """Reveal the payment's card for the gateway account (audited, rate-limited), unless
    nothing is to be charged (blocked, or held for a fraud analyst). ``account_id``: the
    gateway account's id as the caller's transaction just read it, if it did."""
    if payment.is_final or payment.awaiting_risk_review:
        return None
    assert payment.payment_method is not None
    try:
        return reveal_card(
            payment.payment_method.token,
            # The payment's acquirer key names it: the reserve step reveals before the
            # payment's row (and id) exists.
            purpose=f"charge for payment {payment.idempotency_key}",
            by=_gateway_account(account_id),
        )
    except VaultError as exc:
        return exc


def charge_payment(payment: Payment, *, by: Actor, card: Revealed = None) -> Payment:
    """Step 2 (outside any transaction): charge the card, revealed here unless the
    reserve step did (``card``)."""
    if payment.is_final or payment.awaiting_risk_review:
        return payment  # blocked, or held until a fraud analyst decides: nothing is charged
    gateway = get_gateway()
    if card is None:
        card = _reveal_for_charge(payment)
    if isinstance(card, KeysUnavailable):
        report_key_fault(card, operation="reveal", by=by)
        return _settle(payment, None, by=by, failure=("card_unavailable", KEYS_UNAVAILABLE))
    if isinstance(card, VaultError):
        return _settle(payment, None, by=by, failure=("card_unavailable", card.message))
    assert card is not None
    try:
        result = gateway.authorize_capture(
            idempotency_key=payment.idempotency_key, amount=payment.money, card=card
        )
    except GatewayTimeout:
        return _mark_unknown(payment, by=by)
    except GatewayError as exc:
        return _settle(payment, None, by=by, failure=("gateway_error", exc.message))
    finally:
        del card
    return _settle(payment, result, by=by)


def record_failure(payment: Payment, *, by: Actor) -> None:
    """Audit ``payment.failed`` for a payment that has just failed (its failure code set)."""
    record(
        "payment.failed",
        actor=by,
        obj=payment,
        invoice_id=payment.invoice_id,
        amount=payment.amount,
        currency=payment.currency,
        code=payment.failure_code,
    )


def _mark_unknown(payment: Payment, *, by: Actor) -> Payment:
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Status.PENDING:
            return locked
        locked.status = Status.UNKNOWN
        locked.save(update_fields=["status", "updated_at"])
        record(
            "payment.outcome_unknown",
            actor=by,
            obj=locked,
            invoice_id=locked.invoice_id,
            gateway=locked.gateway,
        )
    return locked


_SETTLED_FIELDS = [
    "status",
    "settled_at",
    "gateway_reference",
    "failure_code",
    "failure_message",
    "updated_at",
]


def _save_settled(payment: Payment, entry: AuditEntry | None, *, by: Actor) -> None:
    """Save the settled fields, with ``entry``'s event if any (on PostgreSQL one
    statement: ``audit.services.execute_recorded``)."""
    if entry is None:
        compiled_update(payment, _SETTLED_FIELDS)
    else:
        execute_recorded(*compiled_update_sql(payment, _SETTLED_FIELDS), entry, actor=by)


def _settle(
    payment: Payment,
    result: ChargeResult | None,
    *,
    by: Actor,
    failure: tuple[str, str] | None = None,
) -> Payment:
    """Step 3: record the gateway's answer once; a capture the invoice cannot take is refunded.

    The commit waits for its WAL flush, as every commit does: the customer is told
    "paid" only once that fact survives a crash (docs/decisions.md, 28).
    """
    compensation: Refund | None = None
    succeeded: AuditEntry | None = None
    with transaction.atomic():
        locked = _payment_locked.first(payment.pk)
        if locked.is_final:
            return locked  # settled already (a concurrent reconciliation)
        locked.settled_at = timezone.now()
        if result is not None and result.approved:
            locked.gateway_reference = result.reference
            try:
                # The invoice is locked with the payment (held=True): billing checks the
                # amount before it writes anything, so on a refusal this transaction goes
                # on to refund, with no savepoint to roll back to.
                record_payment_amount(
                    locked.invoice,
                    amount=locked.money,
                    by=by,
                    reference=f"payment:{locked.pk}",
                    held=True,
                )
            except BillingError as exc:
                locked.status = Status.FAILED
                locked.failure_code = "compensated"
                locked.failure_message = (
                    f"captured, but the invoice could not take it ({exc.message}); refunded"
                )[:300]
                compensation = Refund.objects.create(
                    payment=locked,
                    amount=locked.amount,
                    currency=locked.currency,
                    reason="automatic: the invoice could not take the captured amount",
                    idempotency_key="ref_" + secrets.token_hex(16),
                    compensation=True,
                )
                record(
                    "payment.compensation_started",
                    actor=SYSTEM,
                    obj=locked,
                    invoice_id=locked.invoice_id,
                    amount=locked.amount,
                    currency=locked.currency,
                    rule=exc.field,
                )
            else:
                locked.status = Status.SUCCEEDED
                succeeded = AuditEntry(
                    "payment.succeeded",
                    locked,
                    {
                        "invoice_id": locked.invoice_id,
                        "amount": locked.amount,
                        "currency": locked.currency,
                        "gateway_reference": locked.gateway_reference,
                    },
                )
        else:
            code, message = failure or (
                (result.decline_code or "declined", result.message) if result else ("failed", "")
            )
            locked.status = Status.FAILED
            locked.failure_code = code[:40]
            locked.failure_message = message[:300]
            if result is not None:
                locked.gateway_reference = result.reference
            record_failure(locked, by=by)
        _save_settled(locked, succeeded, by=by)
    if compensation is not None:
        _send_refund(compensation, by=SYSTEM)
        locked.refresh_from_db()
    if locked.forget_card:
        # A new card its payer did not keep: erased now that the payment is final.
        forget_unsaved_card(locked.payment_method, by=SYSTEM)
    return locked


def reconcile_payment(payment: Payment, *, by: Actor = SYSTEM) -> Payment:
    """Ask the gateway (by the payment's key) what became of a pending or unknown payment.

    A charge found there is settled as the gateway says; no charge found means
    the request never arrived: FAILED, but only once the payment is older than
    PAYMENTS_RECONCILE_AFTER_MINUTES (an attempt may still be on its way).
    """
    if payment.is_final or payment.awaiting_risk_review:
        return payment  # a payment held for review was never sent: nothing to ask
    result = get_gateway().lookup(idempotency_key=payment.idempotency_key)
    if result is not None:
        return _settle(payment, result, by=by)
    stale = timezone.now() - datetime.timedelta(minutes=settings.PAYMENTS_RECONCILE_AFTER_MINUTES)
    if _charge_started_at(payment) < stale:
        return _settle(
            payment,
            None,
            by=by,
            failure=("no_charge", "the acquirer never received the payment"),
        )
    return Payment.objects.get(pk=payment.pk)


def _charge_started_at(payment: Payment) -> datetime.datetime:
    """When the charge could first have been sent: on approval for a payment held for review."""
    return payment.risk_reviewed_at or payment.created_at


def reconcile_payments(*, by: Actor = SYSTEM) -> dict[str, int]:
    """The reconciliation job: settle unknown payments, stale pending ones, retry refunds."""
    stale = timezone.now() - datetime.timedelta(minutes=settings.PAYMENTS_RECONCILE_AFTER_MINUTES)
    counts = {"checked": 0, "settled": 0, "refunds_retried": 0}
    # A payment approved after a risk review is charged from its approval on, not its
    # creation; one still waiting for the analyst was never sent and is left alone.
    candidates = Payment.objects.filter(
        Q(status=Status.UNKNOWN)
        | Q(status=Status.PENDING, risk_reviewed_at__lt=stale)
        | (
            Q(status=Status.PENDING, risk_reviewed_at__isnull=True, created_at__lt=stale)
            & ~Q(risk_decision=RiskDecision.REVIEW)
        )
    )
    for payment in candidates.order_by("pk"):
        counts["checked"] += 1
        if reconcile_payment(payment, by=by).is_final:
            counts["settled"] += 1
    for refund in Refund.objects.filter(status=Refund.Status.PENDING, created_at__lt=stale):
        counts["refunds_retried"] += 1
        _send_refund(refund, by=by)
    return counts


# --- refunds -------------------------------------------------------------------------


def require_step_up(
    request: HttpRequest | None,
    by: Actor,
    *,
    to: str = "",
    refused: type[PaymentsError] = RefundRefused,
) -> None:
    """A person refunds (or decides a risk review) with a fresh second factor: security's
    step-up rule, refused as this app's error naming the action."""
    from security.exceptions import StepUpRequired
    from security.services import require_step_up as security_step_up

    try:
        security_step_up(request, by)
    except StepUpRequired:
        raise refused(
            _("confirm your second factor again (step-up) to %(action)s")
            % {"action": to or _("refund")},
            field="step_up",
        ) from None


def refund_payment(
    payment: Payment,
    *,
    amount: Money,
    reason: str,
    purpose: str,
    by: Actor,
    request: HttpRequest | None,
) -> Refund:
    """Refund part or all of a captured payment: permission, step-up, a reason and what the
    refund is for; never more than is left of it.

    ``purpose`` (``Refund.Purpose``) decides the invoice's fate, through billing's services,
    once the money is back: ``credit_note`` (goods returned or price reduced: a credit note
    for the amount, the invoice stays settled, the customer gets a refund receipt) or
    ``reopen`` (the payment was reversed: the amount is owed again and the customer is
    told). Without one the refund is refused (``purpose``) and nothing changes.
    """
    if not (hasattr(by, "has_perm") and by.has_perm(REFUND_PERMISSION)):
        raise RefundRefused(_("refunding needs the payments operator's permission"), field="user")
    require_step_up(request, by)
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RefundRefused(_("give the reason for the refund"), field="reason")
    if any(unicodedata.category(char) in ("Cc", "Cs") and char not in "\r\n\t" for char in reason):
        # Refused now, not once the money is back: a credit note prints the reason.
        raise RefundRefused(_("the reason must not contain control characters"), field="reason")
    if purpose not in Refund.Purpose.values:
        raise RefundRefused(
            _(
                "say what the refund is for: with a credit note (the invoice stays paid) or"
                " reopening the invoice (the amount is owed again)"
            ),
            field="purpose",
        )
    with transaction.atomic():
        locked = Payment.objects.select_for_update().select_related("invoice").get(pk=payment.pk)
        if not isinstance(amount, Money) or amount.currency != locked.currency:
            raise InvalidPayment(
                _("the refund must be in %(currency)s") % {"currency": locked.currency},
                field="currency",
            )
        if amount.amount <= 0:
            raise InvalidPayment(_("the refund must be more than zero"), field="amount")
        in_flight = (
            locked.refunds.filter(status=Refund.Status.PENDING).aggregate(t=Sum("amount"))["t"] or 0
        )
        left = locked.refundable - in_flight
        if amount.amount > left:
            raise RefundRefused(
                _("%(amount)s is more than is left to refund (%(left)s)")
                % {"amount": _shown(amount), "left": _shown(Money(max(left, 0), amount.currency))},
                field="amount",
            )
        refund = Refund.objects.create(
            payment=locked,
            amount=amount.amount,
            currency=amount.currency,
            reason=reason[:500],
            purpose=purpose,
            idempotency_key="ref_" + secrets.token_hex(16),
            created_by=by,
        )
        record(
            "payment.refund_requested",
            actor=by,
            obj=locked,
            request=request,
            refund_id=refund.pk,
            amount=refund.amount,
            currency=refund.currency,
            reason=refund.reason,
            purpose=purpose,
        )
    return _send_refund(refund, by=by)


def _send_refund(refund: Refund, *, by: Actor) -> Refund:
    """Ask the gateway for the refund (outside any transaction), then record the answer."""
    payment = refund.payment
    if payment.method == Payment.Method.BANK_TRANSFER:
        # Money that came by bank goes back by bank: the operator pays it out.
        return _complete_refund(refund, reference="manual", by=by)
    try:
        result = get_gateway().refund(
            idempotency_key=refund.idempotency_key,
            charge_reference=payment.gateway_reference,
            amount=Money(refund.amount, refund.currency),
        )
    except GatewayTimeout:
        logger.warning("refund %s: no answer from the gateway; the job retries it", refund.pk)
        return refund
    except GatewayError as exc:
        with transaction.atomic():
            locked = Refund.objects.select_for_update().get(pk=refund.pk)
            if locked.status == Refund.Status.PENDING:
                locked.status = Refund.Status.FAILED
                locked.failure_message = exc.message[:300]
                locked.settled_at = timezone.now()
                locked.save(update_fields=["status", "failure_message", "settled_at"])
                record(
                    "payment.refund_failed",
                    actor=by,
                    obj=locked.payment,
                    refund_id=locked.pk,
                    amount=locked.amount,
                    message=locked.failure_message,
                )
        return locked
    return _complete_refund(refund, reference=result.reference, by=by)


def _complete_refund(refund: Refund, *, reference: str, by: Actor) -> Refund:
    with transaction.atomic():
        locked = Refund.objects.select_for_update().get(pk=refund.pk)
        if locked.status != Refund.Status.PENDING:
            return locked
        payment = (
            Payment.objects.select_for_update().select_related("invoice").get(pk=locked.payment_id)
        )
        locked.status = Refund.Status.SUCCEEDED
        locked.gateway_reference = reference
        locked.settled_at = timezone.now()
        locked.save(update_fields=["status", "gateway_reference", "settled_at"])
        if locked.compensation:
            record(
                "payment.compensated",
                actor=by,
                obj=payment,
                refund_id=locked.pk,
                amount=locked.amount,
                currency=locked.currency,
            )
            return locked
        payment.refunded_amount += locked.amount
        payment.status = (
            Status.REFUNDED
            if payment.refunded_amount == payment.amount
            else Status.PARTIALLY_REFUNDED
        )
        payment.save(update_fields=["refunded_amount", "status", "updated_at"])
        refunded = {
            "amount": Money(locked.amount, locked.currency),
            "reason": locked.reason,
            "by": by,
            "reference": f"refund:{locked.pk}",
        }
        if locked.purpose == Refund.Purpose.CREDIT_NOTE:
            locked.credit_note = record_refund_with_credit_note(payment.invoice, **refunded)
            locked.save(update_fields=["credit_note"])
        else:
            record_refund_reopening(payment.invoice, **refunded)
        record(
            "payment.refunded",
            actor=by,
            obj=payment,
            refund_id=locked.pk,
            amount=locked.amount,
            currency=locked.currency,
            status=payment.status,
            purpose=locked.purpose,
            credit_note=locked.credit_note.display_number if locked.credit_note else "",
        )
    return locked


# --- housekeeping --------------------------------------------------------------------


def purge_idempotency_keys(*, by: Actor = SYSTEM) -> int:
    """Forget idempotency keys older than PAYMENTS_IDEMPOTENCY_HOURS (at least 24 h)."""
    cutoff = timezone.now() - datetime.timedelta(hours=settings.PAYMENTS_IDEMPOTENCY_HOURS)
    with transaction.atomic():
        count, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
        if count:
            record(
                "payments.idempotency_keys_purged",
                actor=by,
                count=count,
                older_than_hours=settings.PAYMENTS_IDEMPOTENCY_HOURS,
            )
    return count


__all__ = [
    "charge_payment",
    "get_gateway_account",
    "held_amount",
    "pay_invoice",
    "pay_invoice_with_new_card",
    "purge_idempotency_keys",
    "reconcile_payment",
    "reconcile_payments",
    "refund_payment",
    "require_step_up",
]
