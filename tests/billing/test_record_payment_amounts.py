"""record_payment_amounts: many received amounts in one transaction, as the single one does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from audit.verify import verify_chain
from billing import services
from billing.exceptions import AmountExceedsDue, InvalidStatusTransition
from billing.models import Customer, Invoice
from billing.money import Money
from billing.services import ReceivedAmount
from security.models import User
from tests.factories import audit_events, ensure_default_series, line, table_snapshot

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]
Status = Invoice.Status


@pytest.fixture
def make_invoices(make_open_invoice: MakeInvoice, alice_company: Customer) -> Callable[..., list]:
    """``make_invoices(n)``: n open invoices of 125.00 SEK (100.00 + 25 % VAT)."""

    def make(count: int) -> list[Invoice]:
        return [make_open_invoice(alice_company, [line("Work", "1", "100")]) for _ in range(count)]

    return make


def sek(minor: int) -> Money:
    return Money(minor, "SEK")


def test_several_amounts_pay_several_invoices_each_with_its_own_event(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    first, second, third = make_invoices(3)

    result = services.record_payment_amounts(
        [
            ReceivedAmount(first, sek(12_500), "payment:1"),
            ReceivedAmount(second.pk, sek(5_000), "payment:2"),
            ReceivedAmount(third, sek(12_500), "payment:3"),
        ],
        by=clerk,
    )

    assert [(i.pk, i.status, i.amount_due) for i in result] == [
        (first.pk, Status.PAID, 0),
        (second.pk, Status.OPEN, 7_500),
        (third.pk, Status.PAID, 0),
    ]
    stored = {i.pk: (i.status, i.amount_paid) for i in Invoice.objects.all()}
    assert stored == {
        first.pk: (Status.PAID, 12_500),
        second.pk: (Status.OPEN, 5_000),
        third.pk: (Status.PAID, 12_500),
    }
    [event] = audit_events("invoice.payment_recorded", second)
    assert event.actor_id == str(clerk.pk)
    assert event.details == {
        "amount": 5_000,
        "currency": "SEK",
        "reference": "payment:2",
        "previous_status": "open",
        "status": "open",
    }
    assert audit_events("invoice.payment_recorded", third)[0].details["status"] == "paid"
    assert verify_chain().ok


def test_a_partial_then_the_full_rest_for_one_invoice_in_one_call(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    [invoice] = make_invoices(1)

    services.record_payment_amounts(
        [ReceivedAmount(invoice, sek(2_500), "a"), ReceivedAmount(invoice, sek(10_000), "b")],
        by=clerk,
    )

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (Status.PAID, 12_500)
    events = audit_events("invoice.payment_recorded", invoice)
    assert [
        (e.details["reference"], e.details["previous_status"], e.details["status"]) for e in events
    ] == [
        ("a", "open", "open"),
        ("b", "open", "paid"),
    ]


def test_an_uncollectible_invoice_becomes_paid_as_with_one_amount(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    [invoice] = make_invoices(1)
    services.mark_uncollectible(invoice, by=clerk)

    [paid] = services.record_payment_amounts([ReceivedAmount(invoice, sek(12_500))], by=clerk)

    assert paid.status == Status.PAID
    assert audit_events("invoice.payment_recorded", invoice)[0].details["previous_status"] == (
        "uncollectible"
    )


@pytest.mark.parametrize(
    ("amounts", "error"),
    [
        ([10_000, 2_501], AmountExceedsDue),  # the second is beyond what the first left due
        ([12_500, 12_500], InvalidStatusTransition),  # paid by the first amount of the call
    ],
)
def test_one_amount_refused_records_none_of_them(
    make_invoices: Callable[..., list[Invoice]],
    clerk: User,
    amounts: list[int],
    error: type[Exception],
) -> None:
    other, invoice = make_invoices(2)
    before = table_snapshot()
    events_before = len(audit_events("invoice.payment_recorded"))

    with pytest.raises(error):
        services.record_payment_amounts(
            [ReceivedAmount(other, sek(12_500))]
            + [ReceivedAmount(invoice, sek(amount)) for amount in amounts],
            by=clerk,
        )

    assert table_snapshot() == before
    assert len(audit_events("invoice.payment_recorded")) == events_before


def test_the_invoices_that_became_paid_go_to_one_receipt_job_in_the_transaction(
    make_invoices: Callable[..., list[Invoice]],
    clerk: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django_q.models import OrmQ

    settings.DOCUMENTS_ON_FINALIZE = "async"
    paid_one, partial, paid_two = make_invoices(3)
    OrmQ.objects.all().delete()  # finalization's document jobs

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.record_payment_amounts(
            [
                ReceivedAmount(paid_one, sek(12_500)),
                ReceivedAmount(partial, sek(100)),
                ReceivedAmount(paid_two, sek(2_500)),
                ReceivedAmount(paid_two, sek(10_000)),
            ],
            by=clerk,
        )

    # The ORM broker's queue is in this database: the job row is written with the
    # payments (a rollback would take it away), not by an after-commit callback.
    assert callbacks == []
    [job] = OrmQ.objects.all()
    assert job.task["func"] == "billing.delivery.tasks.queue_receipts_job"
    assert job.task["args"] == ([paid_one.pk, paid_two.pk],)


def _queries_to_pay(invoices: list[Invoice], clerk: User) -> int:
    with CaptureQueriesContext(connection) as queries:
        services.record_payment_amounts(
            [ReceivedAmount(invoice, sek(12_500)) for invoice in invoices], by=clerk
        )
    return len(queries)


def test_the_queries_do_not_grow_with_the_number_of_amounts(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    few = _queries_to_pay(make_invoices(2), clerk)
    many = _queries_to_pay(make_invoices(12), clerk)

    assert many == few


def test_held_invoices_join_the_callers_transaction_without_a_savepoint(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    [invoice] = make_invoices(1)

    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        with CaptureQueriesContext(connection) as queries:
            [paid] = services.record_payment_amounts(
                [ReceivedAmount(locked, sek(12_500), "payment:9")], by=clerk, held=True
            )

    assert paid is locked
    assert not any("SAVEPOINT" in q["sql"] or "FOR UPDATE" in q["sql"] for q in queries)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (Status.PAID, 12_500)
    assert audit_events("invoice.payment_recorded", invoice)


def test_a_held_refusal_writes_nothing_and_leaves_the_callers_transaction_usable(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    [invoice] = make_invoices(1)
    before = table_snapshot()

    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        with pytest.raises(AmountExceedsDue):
            services.record_payment_amounts(
                [ReceivedAmount(locked, sek(99_999))], by=clerk, held=True
            )
        # Not marked for rollback: the caller's next statement runs.
        assert Invoice.objects.filter(pk=invoice.pk).exists()

    assert table_snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_held_needs_a_transaction_and_the_locked_invoices(
    make_invoices: Callable[..., list[Invoice]], clerk: User
) -> None:
    ensure_default_series()  # a transactional test starts from empty tables
    [invoice] = make_invoices(1)

    with pytest.raises(TransactionManagementError):
        services.record_payment_amounts([ReceivedAmount(invoice, sek(100))], by=clerk, held=True)
    with transaction.atomic(), pytest.raises(TypeError, match="locked Invoice"):
        services.record_payment_amounts([ReceivedAmount(invoice.pk, sek(100))], by=clerk, held=True)
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0
