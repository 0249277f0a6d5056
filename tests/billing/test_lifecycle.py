"""After finalization: payments, refunds, void and uncollectible, through one transition map."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from billing import services
from billing.exceptions import (
    AmountExceedsDue,
    InvalidInput,
    InvalidStatusTransition,
    RefundExceedsPaid,
)
from billing.models import Customer, Invoice
from billing.money import Money
from security.models import User
from tests.factories import audit_events, line, table_snapshot

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]
Status = Invoice.Status


@pytest.fixture
def invoice(make_open_invoice: MakeInvoice, alice_company: Customer) -> Invoice:
    """An open invoice of 1,250.00 SEK (1,000.00 + 25% VAT)."""
    return make_open_invoice(alice_company, [line("Work", "1", "1000")])


def test_a_partial_payment_keeps_the_invoice_open(invoice: Invoice, clerk: User) -> None:
    paid = services.record_payment_amount(invoice, amount=Money(50000, "SEK"), by=clerk)
    assert (paid.status, paid.amount_paid, paid.amount_due) == (Status.OPEN, 50000, 75000)
    [event] = audit_events("invoice.payment_recorded", invoice)
    assert event.details["amount"] == 50000 and event.details["status"] == "open"


def test_paying_the_amount_due_marks_the_invoice_paid(invoice: Invoice, clerk: User) -> None:
    services.record_payment_amount(invoice, amount=Money(25000, "SEK"), by=clerk)
    paid = services.record_payment_amount(invoice, amount=Money(100000, "SEK"), by=clerk)
    assert (paid.status, paid.amount_due) == (Status.PAID, 0)
    assert audit_events("invoice.payment_recorded", invoice)[-1].details["status"] == "paid"


@pytest.mark.parametrize(
    ("amount", "error", "field"),
    [
        (Money(125001, "SEK"), AmountExceedsDue, "amount"),
        (Money(100, "EUR"), InvalidInput, "currency"),
        (Money(0, "SEK"), InvalidInput, "amount"),
        (Money(-5, "SEK"), InvalidInput, "amount"),
    ],
)
def test_a_payment_beyond_the_amount_due_or_malformed_is_refused(
    invoice: Invoice, clerk: User, amount: Money, error: type[Exception], field: str
) -> None:
    before = table_snapshot()
    with pytest.raises(error) as excinfo:
        services.record_payment_amount(invoice, amount=amount, by=clerk)
    assert getattr(excinfo.value, "field", None) == field
    assert table_snapshot() == before
    assert not audit_events("invoice.payment_recorded")


def test_a_refund_that_reverses_a_payment_reopens_a_paid_invoice(
    invoice: Invoice, clerk: User
) -> None:
    services.record_payment_amount(invoice, amount=Money(125000, "SEK"), by=clerk)
    refunded = services.record_refund_reopening(
        invoice, amount=Money(25000, "SEK"), reason="chargeback", by=clerk
    )
    assert (refunded.status, refunded.amount_paid, refunded.amount_due) == (
        Status.OPEN,
        100000,
        25000,
    )
    [event] = audit_events("invoice.refund_recorded", invoice)
    assert (event.details["previous_status"], event.details["purpose"]) == ("paid", "reopen")


def test_a_refund_beyond_what_was_paid_is_refused(invoice: Invoice, clerk: User) -> None:
    services.record_payment_amount(invoice, amount=Money(1000, "SEK"), by=clerk)
    with pytest.raises(RefundExceedsPaid) as excinfo:
        services.record_refund_reopening(
            invoice, amount=Money(1001, "SEK"), reason="too much", by=clerk
        )
    assert excinfo.value.field == "amount"
    assert Invoice.objects.get(pk=invoice.pk).amount_paid == 1000


def test_void_an_open_invoice_with_nothing_paid(invoice: Invoice, clerk: User) -> None:
    voided = services.void_invoice(invoice, by=clerk, reason="sent to the wrong customer")
    assert (voided.status, voided.amount_due) == (Status.VOID, 0)
    [event] = audit_events("invoice.voided", invoice)
    assert event.details == {"previous_status": "open", "reason": "sent to the wrong customer"}


def test_a_voided_invoice_takes_no_payment_and_cannot_come_back(
    invoice: Invoice, clerk: User
) -> None:
    services.void_invoice(invoice, by=clerk)
    with pytest.raises(InvalidStatusTransition):
        services.record_payment_amount(invoice, amount=Money(100, "SEK"), by=clerk)
    with pytest.raises(InvalidStatusTransition):
        services.mark_uncollectible(invoice, by=clerk)
    assert Invoice.objects.get(pk=invoice.pk).status == Status.VOID


def test_an_invoice_with_a_payment_cannot_be_voided(invoice: Invoice, clerk: User) -> None:
    services.record_payment_amount(invoice, amount=Money(100, "SEK"), by=clerk)
    with pytest.raises(InvalidStatusTransition, match="refund or credit"):
        services.void_invoice(invoice, by=clerk)
    assert Invoice.objects.get(pk=invoice.pk).status == Status.OPEN


def test_a_draft_cannot_be_voided_or_paid(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    draft = make_draft_invoice(alice_company)
    with pytest.raises(InvalidStatusTransition) as excinfo:
        services.void_invoice(draft, by=clerk)
    assert excinfo.value.field == "status"
    with pytest.raises(InvalidStatusTransition):
        services.record_payment_amount(draft, amount=Money(100, "SEK"), by=clerk)


def test_an_uncollectible_invoice_can_still_be_paid(invoice: Invoice, clerk: User) -> None:
    written_off = services.mark_uncollectible(invoice, by=clerk, reason="bankrupt")
    assert written_off.status == Status.UNCOLLECTIBLE
    assert audit_events("invoice.marked_uncollectible", invoice)[0].details["amount_due"] == 125000
    partly = services.record_payment_amount(invoice, amount=Money(5000, "SEK"), by=clerk)
    assert partly.status == Status.UNCOLLECTIBLE
    paid = services.record_payment_amount(invoice, amount=Money(120000, "SEK"), by=clerk)
    assert paid.status == Status.PAID


def test_every_status_change_follows_the_one_transition_map() -> None:
    from billing.services import ALLOWED_TRANSITIONS

    assert set(ALLOWED_TRANSITIONS) == set(Status.values)
    assert ALLOWED_TRANSITIONS[Status.VOID] == frozenset()
    assert Status.DRAFT not in set().union(*ALLOWED_TRANSITIONS.values())


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_never_take_an_invoice_beyond_its_amount_due(clerk: User) -> None:
    import threading

    from django.db import connection

    from tests.factories import ensure_default_series, make_company, make_customer

    ensure_default_series()
    make_company()
    draft = services.create_draft_invoice(
        customer=make_customer("Race AB"), lines=[line("Work", "1", "1000")], by=clerk
    )
    invoice = services.finalize_invoice(draft, by=clerk)  # 1,250.00 SEK due
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def pay() -> None:
        try:
            barrier.wait(timeout=30)
            services.record_payment_amount(invoice, amount=Money(40000, "SEK"), by=clerk)
            outcomes.append("paid")
        except AmountExceedsDue:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=pay) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    invoice.refresh_from_db()
    assert sorted(outcomes) == ["paid"] * 3 + ["refused"] * 7
    assert (invoice.amount_paid, invoice.amount_due) == (120000, 5000)
    assert len(audit_events("invoice.payment_recorded", invoice)) == 3
