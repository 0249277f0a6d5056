"""Paying an invoice by card (step 1, **reserve**, then the charge: ``settlement``), and
the idempotency keys' housekeeping.

Reserve is one transaction under the invoice's row lock: check the idempotency key,
check the amount against what is left to pay (a payment in flight refuses the attempt),
score the attempt (``payments.fraud.assess_card_payment``), create the PENDING payment
(it holds its amount), count it in the fraud engine's velocity counters and reveal its
card for the gateway account: one commit for all of it. Blocked by the risk rules:
recorded FAILED (``risk_blocked``), never charged. Held for review: PENDING, not charged
until a fraud analyst approves it."""

from __future__ import annotations

import contextlib
import datetime
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import SYSTEM, pending_event, record
from billing.models import Invoice
from billing.money import Money
from billing.webhooks import emit_payment
from payments.exceptions import AmountExceedsDue, InvalidPayment, InvoiceNotPayable
from payments.fraud.features.velocity import Keys, count_attempt
from payments.fraud.models import RiskDecision, RiskEvaluation, RiskHold
from payments.fraud.rule_selectors import customer_email
from payments.fraud.rules import FAILURE_WINDOW, RiskAssessment, assess_card_payment
from payments.fraud.selectors import facts_of, get_risk_settings
from payments.fraud.services import ensure_risk_settings
from payments.freeze import check_card_payments_open
from payments.gateways import get_gateway
from payments.models import IdempotencyKey, Payment, PaymentMethod
from payments.saved_cards import check_may_save_card, forget_unsaved_card
from payments.selectors import held_amounts
from payments.services.card_reconciliation import reconcile_payment
from payments.services.checks import (
    available_to_pay,
    check_amount,
    check_key,
    check_minimum,
    check_payer,
    check_replay,
    payer_scope,
    replayed,
    request_hash,
    shown,
)
from payments.services.hot_statements import facts_after_lock, insert_reserved, invoice_locked
from payments.services.settlement import Revealed, charge_payment, reveal_for_charge
from payments.vault.entry import EncryptedCard
from payments.vault.exceptions import KeysUnavailable, PaymentMethodGone
from payments.vault.services import card_payments_unavailable, delete_payment_method, tokenize
from security.actors import Actor
from security.net import client_address

Status = Payment.Status


def held_amount(invoice: Invoice) -> int:
    """What payments still in flight (pending, unknown) hold against the invoice."""
    return held_amounts([invoice.pk]).get(invoice.pk, 0)


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
    key = check_key(idempotency_key)
    card_id = payment_method.pk if isinstance(payment_method, PaymentMethod) else payment_method
    if not isinstance(card_id, int) or isinstance(card_id, bool):
        raise InvalidPayment(_("choose a saved card"), field="payment_method")
    fingerprint = request_hash(
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
    key = check_key(idempotency_key)
    fingerprint = request_hash(
        invoice=invoice.pk,
        amount=getattr(amount, "amount", None),
        currency=getattr(amount, "currency", None),
        card="new",
    )
    replay = replayed(payer_scope(invoice), key, fingerprint)
    if replay is not None:
        return replay if replay.is_final else reconcile_payment(replay, by=SYSTEM)
    check_payer(invoice, by)
    check_amount(invoice, amount)
    # Before the card is opened and stored: a tiny amount is refused at once (the reserve
    # step checks again under the invoice's lock).
    check_minimum(amount, get_risk_settings().min_card_amounts, left=invoice.amount_due)
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
    scope = payer_scope(invoice)
    try:
        with transaction.atomic():
            # The lock serializes every attempt on this invoice: "what is left to pay"
            # below cannot change until this transaction ends (no overpayment race).
            locked = invoice_locked.first(invoice.pk)
            if locked is None:
                raise InvoiceNotPayable(_("no such invoice"), field="invoice")
            # Read after the lock (a statement of its own, with its own snapshot): the
            # card, the stored key, what payments in flight hold, and the risk facts.
            address = client_address(request) or ""
            payment_method = _attempt_facts(locked, card_id, scope, key, address)
            if payment_method is None:  # not a card of the invoice's customer
                check_payer(locked, by)
                raise InvalidPayment(_("choose one of your saved cards"), field="payment_method")
            facts = vars(payment_method)  # the annotations of facts_after_lock
            if facts["stored_hash"] is not None:
                check_replay(facts["stored_hash"], request_hash)
                return Payment.objects.get(pk=facts["stored_payment"]), False, None
            check_payer(locked, by)
            money = check_amount(locked, amount)
            if payment_method.status != PaymentMethod.Status.ACTIVE:
                raise InvalidPayment(_("this card was deleted"), field="payment_method")
            if not payment_method.saved and not forget_card:
                # A card its payer did not keep serves the one payment it was typed for.
                raise InvalidPayment(_("choose one of your saved cards"), field="payment_method")
            available = available_to_pay(locked, held_state=facts["held_state"])
            if money.amount > available:
                raise AmountExceedsDue(
                    _("%(amount)s is more than is left to pay (%(left)s)")
                    % {"amount": shown(money), "left": shown(locked.money(available))},
                    field="amount",
                )
            known = facts_of(facts)
            check_minimum(money, known.min_card_amounts, left=available)
            risk = assess_card_payment(
                payment_method=payment_method,
                customer_id=locked.customer_id,
                amount=money,
                facts=known,
                address=address,
                step_up=lambda: payer_step_up(request, by),
                invoice=locked,
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
            event = pending_event(
                "payment.blocked" if blocked else "payment.started",
                actor=by,
                obj=payment,  # not saved yet: its id is given by the database
                request=request,
                invoice_id=locked.pk,
                amount=money.amount,
                currency=money.currency,
                method=payment.method,
                card=f"{payment_method.brand} {payment_method.last4}",
                risk=risk.decision,
                **({"rules": [r["rule"] for r in risk.reasons]} if risk.reasons else {}),
            )
            # The reveal before the insert: each writes an audit event, and the first
            # one takes the audit chain's lock until the commit; the other payments
            # wait for it, so as little as possible runs between it and the commit.
            card = reveal_for_charge(payment, account_id=facts["gateway_account"])
            if isinstance(card, KeysUnavailable):
                raise card  # no payment is reserved: the vault's keys fail (the caller says)
            insert_reserved(payment, stored, event)
            # After the audit chain's lock (taken above): the counters' hot rows (one card
            # paying many invoices) are locked for as short a time as the chain's. The
            # engine's evaluation of the attempt goes in with them (one statement).
            count_attempt(
                Keys(
                    card=payment_method.fingerprint,
                    customer=str(locked.customer_id),
                    ip=address,
                    # As the engine read it, else its own (prepared) statement: the facts
                    # statement is at psycopg's query-cache limit (docs/fraud.md, "Cost").
                    email=risk.email or customer_email(locked.customer_id),
                ),
                at=payment.created_at,
                amount=payment.amount,
                currency=payment.currency,
                failed=blocked,
                evaluation=(
                    RiskEvaluation(
                        payment=payment, created_at=payment.created_at, **risk.evaluation
                    )
                    if risk.evaluation is not None
                    else None
                ),
            )
            if blocked or payment.awaiting_risk_review:  # webhooks: posted after commit
                kind = "payment.failed" if blocked else "payment.held_for_review"
                emit_payment(kind, payment, customer=locked.customer_id)
    except IntegrityError:
        # The same key raced in for another invoice: the stored request decides.
        replay = replayed(scope, key, request_hash)
        if replay is None:
            raise
        return replay, False, None
    return payment, True, card


def payer_step_up(request: HttpRequest | None, by: Actor) -> str:
    """What a step-up fraud rule finds (``payments.fraud.rules.StepUpState``): "fresh" when
    the payer confirmed a second factor within the step-up window in this session,
    "stale" when they have one to confirm again, "unavailable" otherwise (no session, as
    for an API client, or no second factor enrolled): the payment is then held for review."""
    from security.selectors import has_second_factor, is_step_up_fresh

    if request is None or not getattr(by, "is_authenticated", False):
        return "unavailable"
    if is_step_up_fresh(request):
        return "fresh"
    return "stale" if has_second_factor(user=by) else "unavailable"


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
    card = facts_after_lock.first(*arguments)
    if card is not None and card.max_failed_attempts is None:
        # A fresh database: the thresholds' row is stored with the defaults.
        ensure_risk_settings()
        card = facts_after_lock.first(*arguments)
    return card


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
