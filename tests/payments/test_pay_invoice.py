"""Card payments through the sandbox acquirer: outcomes, bad input, idempotency, audit."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services as billing
from billing.models import Customer, Invoice
from billing.money import Money
from db.prepared import is_hot
from payments import services
from payments.exceptions import (
    AlreadyPaid,
    AmountExceedsDue,
    IdempotencyKeyReused,
    InvalidPayment,
    InvoiceNotPayable,
    PaymentInProgress,
)
from payments.gateways.models import SandboxCharge
from payments.models import IdempotencyKey, Payment, PaymentMethod, Refund
from payments.services import card_payments
from security.models import User
from tests.factories import audit_events, line
from tests.payments.fixtures import APPROVED, DECLINED, INSUFFICIENT, TIMEOUT, key, sek

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def pay(invoice: Invoice, card: PaymentMethod, by: User, amount: Money | None = None, k: Any = 1):
    return services.pay_invoice(
        invoice,
        amount=amount if amount is not None else sek(1000),
        payment_method=card,
        idempotency_key=key(k),
        by=by,
    )


def test_an_approved_card_pays_the_invoice_in_full(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    payment = pay(thousand_sek_invoice, saved_card(APPROVED), alice)

    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.gateway_reference.startswith("sbx_ch_")
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.PAID
    assert thousand_sek_invoice.amount_due == 0
    assert [e.details["amount"] for e in audit_events("payment.succeeded", payment)] == [100_000]
    assert audit_events("payment.started", payment)[0].actor_id == str(alice.pk)
    assert audit_events("invoice.payment_recorded", thousand_sek_invoice)


def test_the_card_is_revealed_only_by_the_gateway_account(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    pay(thousand_sek_invoice, saved_card(APPROVED), alice)

    reveals = audit_events("vault.card_revealed")
    assert len(reveals) == 1
    assert reveals[0].actor_label == "svc-gateway"


@pytest.fixture
def pay_another(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    saved_card: Cards,
    alice: User,
) -> Callable[[], Payment]:
    """Alice has paid one invoice with her card, so this process keeps the gateway
    account; ``pay_another()`` pays a new 1,000 SEK invoice with the same card."""
    card = saved_card(APPROVED)

    def pay_new(k: int) -> Payment:
        invoice = make_open_invoice(alice_company, [line("Annual licence", "1", "800.00")])
        return pay(invoice, card, alice, k=k)

    pay_new(1)
    return lambda: pay_new(2)


def test_a_recreated_gateway_account_is_used_not_the_one_this_process_kept(
    pay_another: Callable[[], Payment],
) -> None:
    old = services.get_gateway_account()
    old.username = "svc-gateway-retired"
    old.save(update_fields=["username"])
    new = services.get_gateway_account()  # created anew under the configured name

    payment = pay_another()

    assert payment.status == Payment.Status.SUCCEEDED
    last = audit_events("vault.card_revealed")[-1]
    assert (last.actor_id, last.actor_label) == (str(new.pk), "svc-gateway")


def test_a_deactivated_gateway_account_reveals_nothing(
    pay_another: Callable[[], Payment],
) -> None:
    User.objects.filter(username="svc-gateway").update(is_active=False)

    payment = pay_another()

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, "card_unavailable")
    assert not SandboxCharge.objects.filter(idempotency_key=payment.idempotency_key).exists()


def test_a_partial_payment_leaves_the_rest_due(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    pay(thousand_sek_invoice, saved_card(APPROVED), alice, amount=sek(400))

    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.OPEN
    assert thousand_sek_invoice.amount_due == 60_000


@pytest.mark.parametrize(
    ("number", "code"), [(DECLINED, "card_declined"), (INSUFFICIENT, "insufficient_funds")]
)
def test_a_declined_card_fails_and_releases_the_amount(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User, number: str, code: str
) -> None:
    payment = pay(thousand_sek_invoice, saved_card(number), alice)

    assert payment.status == Payment.Status.FAILED
    assert payment.failure_code == code
    assert audit_events("payment.failed", payment)[0].details["code"] == code
    # Nothing is held any more: a good card can pay the whole invoice.
    assert pay(thousand_sek_invoice, saved_card(APPROVED), alice, k=2).status == "succeeded"


def test_a_timeout_leaves_the_outcome_unknown_and_holds_the_amount(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    payment = pay(thousand_sek_invoice, saved_card(TIMEOUT), alice)

    assert payment.status == Payment.Status.UNKNOWN
    assert audit_events("payment.outcome_unknown", payment)
    # The acquirer did charge; the invoice does not know yet, and nobody may pay twice.
    assert SandboxCharge.objects.get(idempotency_key=payment.idempotency_key).outcome == "captured"
    with pytest.raises(PaymentInProgress) as refused:
        pay(thousand_sek_invoice, saved_card(APPROVED), alice, k=2)
    assert refused.value.field == "invoice"
    assert "being confirmed" in refused.value.message


def test_reconciliation_settles_an_unknown_payment_from_the_acquirer(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    payment = pay(thousand_sek_invoice, saved_card(TIMEOUT), alice)

    counts = services.reconcile_payments()

    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert counts == {"checked": 1, "settled": 1, "refunds_retried": 0}
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.PAID
    assert SandboxCharge.objects.count() == 1


def test_a_replay_of_an_unknown_payment_asks_the_acquirer_and_never_charges_twice(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    card = saved_card(TIMEOUT)
    first = pay(thousand_sek_invoice, card, alice)

    again = pay(thousand_sek_invoice, card, alice)

    assert again.pk == first.pk
    assert again.status == Payment.Status.SUCCEEDED
    assert SandboxCharge.objects.count() == 1


def test_a_pending_payment_the_acquirer_never_received_fails_once_stale(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User, monkeypatch: Any
) -> None:
    # The process died between reserving and calling the gateway.
    monkeypatch.setattr(card_payments, "charge_payment", lambda payment, by, card: payment)
    payment = pay(thousand_sek_invoice, saved_card(APPROVED), alice)
    assert payment.status == Payment.Status.PENDING

    assert services.reconcile_payments()["checked"] == 0  # too young to judge
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=6)):
        services.reconcile_payments()

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, "no_charge")
    assert audit_events("payment.failed", payment)


def test_the_same_key_and_request_returns_the_original_payment(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    card = saved_card(APPROVED)
    first = pay(thousand_sek_invoice, card, alice)

    replay = pay(thousand_sek_invoice, card, alice)

    assert replay.pk == first.pk
    assert Payment.objects.count() == 1
    assert SandboxCharge.objects.count() == 1
    assert len(audit_events("payment.started")) == 1


def test_the_same_key_with_another_amount_is_refused(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    card = saved_card(APPROVED)
    pay(thousand_sek_invoice, card, alice, amount=sek(100))

    with pytest.raises(IdempotencyKeyReused) as caught:
        pay(thousand_sek_invoice, card, alice, amount=sek(200))

    assert caught.value.field == "idempotency_key"
    assert Payment.objects.count() == 1


def test_a_declined_request_replayed_returns_the_decline(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    card = saved_card(DECLINED)
    first = pay(thousand_sek_invoice, card, alice)

    assert pay(thousand_sek_invoice, card, alice).pk == first.pk
    assert SandboxCharge.objects.count() == 1


@pytest.mark.parametrize(
    ("amount", "error", "field"),
    [
        (Money(0, "SEK"), InvalidPayment, "amount"),
        (Money(-100, "SEK"), InvalidPayment, "amount"),
        (Money(100_001, "SEK"), AmountExceedsDue, "amount"),
        (Money(100, "EUR"), InvalidPayment, "currency"),
    ],
)
def test_bad_amounts_are_refused_and_change_nothing(
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    alice: User,
    amount: Money,
    error: type[Exception],
    field: str,
) -> None:
    card = saved_card(APPROVED)
    with pytest.raises(error) as caught:
        pay(thousand_sek_invoice, card, alice, amount=amount)

    assert getattr(caught.value, "field", None) == field
    assert not Payment.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert not SandboxCharge.objects.exists()


def test_a_paid_invoice_is_refused_as_already_paid(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    card = saved_card(APPROVED)
    pay(thousand_sek_invoice, card, alice)

    with pytest.raises(AlreadyPaid, match="already paid"):
        pay(thousand_sek_invoice, card, alice, k=2)


def test_a_void_invoice_takes_no_payment(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User, clerk: User
) -> None:
    billing.void_invoice(thousand_sek_invoice, by=clerk)
    with pytest.raises(InvoiceNotPayable):
        pay(thousand_sek_invoice, saved_card(APPROVED), alice)


def test_a_short_idempotency_key_is_refused(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    with pytest.raises(InvalidPayment) as caught:
        services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(1000),
            payment_method=saved_card(APPROVED),
            idempotency_key="abc",
            by=alice,
        )
    assert caught.value.field == "idempotency_key"


def test_bob_cannot_pay_alice_invoice_even_with_his_own_card(
    thousand_sek_invoice: Invoice, bob: User, bob_company: Any
) -> None:
    from payments.vault.cards import Card
    from payments.vault.services import tokenize

    bobs_card = tokenize(
        Card.from_input(number=APPROVED, expiry="12/39", cvc="123"), customer=bob_company, by=bob
    )
    with pytest.raises(InvoiceNotPayable):
        pay(thousand_sek_invoice, bobs_card, bob, amount=Money(100_000, "SEK"))
    assert not Payment.objects.exists()


@pytest.fixture
def credited_while_charging(
    thousand_sek_invoice: Invoice, clerk: User, monkeypatch: Any
) -> Invoice:
    """Alice's invoice, credited in full while a card is being charged for it."""
    real_charge = services.charge_payment

    def charge_while_credited(payment: Payment, *, by: Any, card: Any) -> Payment:
        billing.issue_credit_note(thousand_sek_invoice, by=clerk, reason="cancelled order")
        return real_charge(payment, by=by, card=card)

    monkeypatch.setattr(card_payments, "charge_payment", charge_while_credited)
    return thousand_sek_invoice


def test_a_capture_the_invoice_cannot_take_is_refunded_at_once(
    credited_while_charging: Invoice, saved_card: Cards, alice: User
) -> None:
    thousand_sek_invoice = credited_while_charging
    payment = pay(thousand_sek_invoice, saved_card(APPROVED), alice)

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, "compensated")
    charge = SandboxCharge.objects.get()
    assert charge.refunded_amount == charge.amount
    assert audit_events("payment.compensated", payment)
    # Started as every refund is (open_refund): the refund and its event together.
    refund = Refund.objects.get(payment=payment)
    [started] = audit_events("payment.compensation_started", payment)
    assert refund.compensation and started.details["refund_id"] == refund.pk


def _commit_setting() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_settle_commits_only_once_its_wal_is_flushed(
    default_series: None, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    """The customer is told "paid" only once that is durable: the settle's transaction
    runs with synchronous_commit on (read inside it, just after its lock), and no
    statement of the payment turns it off."""
    card = saved_card(APPROVED)
    settings_in_the_settle: list[str] = []
    ran: list[str] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        ran.append(sql)
        result = execute(sql, params, many, context)
        if 'FOR UPDATE OF "payments_payment"' in sql:
            # A cursor of its own on the same session: the settle's transaction is open.
            with context["connection"].connection.cursor() as raw:
                raw.execute("SELECT current_setting('synchronous_commit'), now()")
                settings_in_the_settle.append(raw.fetchone()[0])
        return result

    with connection.execute_wrapper(watch):
        payment = pay(thousand_sek_invoice, card, alice)

    assert payment.status == Payment.Status.SUCCEEDED
    assert settings_in_the_settle == ["on"]
    assert not connection.in_atomic_block  # the settle was a transaction of its own
    assert not [sql for sql in ran if "synchronous_commit" in sql]
    assert _commit_setting() == "on"


@pytest.mark.postgres_only
def test_a_compensation_commits_with_the_wal_flush_before_it_refunds(
    credited_while_charging: Invoice, saved_card: Cards, alice: User
) -> None:
    with CaptureQueriesContext(connection) as queries:
        payment = pay(credited_while_charging, saved_card(APPROVED), alice)

    assert payment.failure_code == "compensated"
    sqls = [q["sql"] for q in queries]
    assert not [sql for sql in sqls if "synchronous_commit" in sql]
    assert _commit_setting() == "on"


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET ", "SHOW ")


@pytest.mark.postgres_only
def test_every_statement_of_a_card_payment_is_prepared_on_its_connection(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User, settings: Any
) -> None:
    # The payment's own statements; the fraud engine's are checked in
    # tests/payments/fraud/test_engine_statements.py.
    settings.FRAUD_ENGINE_ENABLED = False
    card = saved_card(APPROVED)
    pay(thousand_sek_invoice, card, alice, amount=sek(400), k=1)  # the card's first reveal
    ran: list[str] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not sql.lstrip().upper().startswith(_CONTROL):
            ran.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        payment = pay(thousand_sek_invoice, card, alice, amount=sek(400), k=2)

    assert payment.status == Payment.Status.SUCCEEDED
    assert len(ran) >= 8  # facts, reveal, its event, payment, charge, lock, settle, job
    assert [sql for sql in ran if not is_hot(sql)] == []
    # The invoice's frozen snapshots are for its documents: a payment does not read them.
    assert [sql for sql in ran if "seller_snapshot" in sql] == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = {row[0] for row in cursor.fetchall()}
    assert [sql for sql in ran if _as_sent(sql) not in prepared] == []


def _as_sent(sql: str) -> str:
    """``sql`` as psycopg sends it to be prepared: ``%s`` numbered as ``$1``, ``$2``, ..."""
    pieces = sql.replace("%%", "\0").split("%s")
    numbered = pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], 1))
    return numbered.replace("\0", "%")


def test_idempotency_keys_are_kept_for_24_hours_then_purged(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    pay(thousand_sek_invoice, saved_card(APPROVED), alice, amount=sek(10))
    now = timezone.now()

    with time_machine.travel(now + datetime.timedelta(hours=23, minutes=59)):
        assert services.purge_idempotency_keys() == 0
    with time_machine.travel(now + datetime.timedelta(hours=24, minutes=1)):
        assert services.purge_idempotency_keys() == 1

    assert not IdempotencyKey.objects.exists()
    assert audit_events("payments.idempotency_keys_purged")[0].details["count"] == 1
