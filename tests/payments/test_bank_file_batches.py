"""camt.054 import, the batch path: a batch's matched lines are recorded together."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import SYSTEM
from audit.verify import verify_chain
from billing.delivery.models import Delivery
from billing.delivery.tasks import queue_receipts_job
from billing.models import Customer, Invoice
from payments import services as payment_services
from payments.exceptions import PaymentsError
from payments.models import BankLine, Payment, PaymentMethod
from payments.reconciliation.camt054 import sample_camt054
from payments.reconciliation.services import import_bank_file
from security.models import User
from tests.factories import audit_events, ensure_default_series, line
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db

MakeInvoices = Callable[[int], list[Invoice]]


@pytest.fixture
def make_invoices(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer
) -> MakeInvoices:
    """``make_invoices(n)``: n open invoices of Alice's, 125.00 SEK each."""

    def make(count: int) -> list[Invoice]:
        return [make_open_invoice(alice_company, [line("Work", "1", "100")]) for _ in range(count)]

    return make


def _paying(invoices: list[Invoice], amount: str = "125.00") -> list[dict[str, str]]:
    return [{"amount": amount, "reference": invoice.ocr_reference} for invoice in invoices]


def test_one_batch_pays_several_invoices_each_payment_audited_and_the_chain_verifies(
    make_invoices: MakeInvoices,
) -> None:
    invoices = make_invoices(4)
    content = sample_camt054(
        [*_paying(invoices[:3]), {"amount": "9.00", "reference": "77"}, *_paying(invoices[3:])]
    )

    report = import_bank_file(content, filename="batch.xml", by=SYSTEM)

    assert (report.matched, report.review) == (4, 1)
    assert report.matched_amount == {"SEK": 50_000}
    for invoice in invoices:
        invoice.refresh_from_db()
        assert (invoice.status, invoice.amount_paid) == ("paid", 12_500)
        payment = Payment.objects.get(invoice=invoice)
        assert payment.bank_line is not None and payment.bank_line.invoice_id == invoice.pk
        assert payment.idempotency_key == f"bank_{payment.bank_line.pk}"
        [event] = audit_events("payment.bank_transfer_recorded", payment)
        assert event.details == {
            "invoice_id": invoice.pk,
            "amount": 12_500,
            "currency": "SEK",
            "bank_line_id": payment.bank_line.pk,
        }
        [change] = audit_events("invoice.payment_recorded", invoice)
        assert change.details["reference"] == f"payment:{payment.pk}"
        assert (change.details["previous_status"], change.details["status"]) == ("open", "paid")
    assert verify_chain().ok


def test_two_lines_for_one_invoice_a_partial_one_waits_and_the_full_one_pays(
    make_invoices: MakeInvoices,
) -> None:
    partial_then_full, paid_twice = make_invoices(2)
    content = sample_camt054(
        _paying([partial_then_full], "25.00")
        + _paying([partial_then_full])
        + _paying([paid_twice])
        + _paying([paid_twice])
    )

    report = import_bank_file(content, filename="twice.xml", by=SYSTEM)

    assert (report.matched, report.review) == (2, 2)
    reasons = list(BankLine.objects.order_by("position").values_list("reason", flat=True))
    assert reasons == ["amount_mismatch", "", "", "amount_mismatch"]
    for invoice in (partial_then_full, paid_twice):
        invoice.refresh_from_db()
        assert (invoice.status, invoice.amount_paid) == ("paid", 12_500)
        assert Payment.objects.filter(invoice=invoice).count() == 1
    assert verify_chain().ok


def test_each_invoice_paid_by_a_batch_gets_one_receipt_from_one_job(
    make_invoices: MakeInvoices, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django_q.models import OrmQ

    settings.DOCUMENTS_ON_FINALIZE = "async"
    invoices = make_invoices(3)
    OrmQ.objects.all().delete()  # finalization's document jobs
    content = sample_camt054([*_paying(invoices), {"amount": "1.00", "reference": "1"}])

    with django_capture_on_commit_callbacks(execute=True):
        import_bank_file(content, filename="receipts.xml", by=SYSTEM)

    [job] = OrmQ.objects.all()
    assert job.task["func"] == "billing.delivery.tasks.queue_receipts_job"
    assert job.task["args"] == ([invoice.pk for invoice in invoices],)
    with django_capture_on_commit_callbacks(execute=False):
        assert queue_receipts_job(*job.task["args"]) == 3
        assert queue_receipts_job(*job.task["args"]) == 0  # run again: nothing twice
    receipts = Delivery.objects.filter(kind=Delivery.Kind.RECEIPT)
    assert sorted(receipts.values_list("invoice_id", flat=True)) == [i.pk for i in invoices]


def _queries_to_import(invoices: list[Invoice], tag: str) -> int:
    content = sample_camt054(
        _paying(invoices) + [{"amount": "1.00", "reference": f"{tag}{n}"} for n in range(5)],
        message_id=tag,
    )
    with CaptureQueriesContext(connection) as queries:
        report = import_bank_file(content, filename=f"{tag}.xml", by=SYSTEM)
    assert report.matched == len(invoices)
    return len(queries)


def test_the_queries_of_a_batch_do_not_grow_with_its_matched_lines(
    make_invoices: MakeInvoices,
) -> None:
    few = _queries_to_import(make_invoices(2), "FEW")
    many = _queries_to_import(make_invoices(15), "MANY")

    assert many == few
    assert Payment.objects.count() == 17
    assert verify_chain().ok


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_card_payments_racing_an_import_never_pay_an_invoice_twice(
    make_invoices: MakeInvoices,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
) -> None:
    ensure_default_series()
    invoices = make_invoices(6)
    card = saved_card(APPROVED)
    payment_services.get_gateway_account()  # created once, not raced by the threads
    content = sample_camt054(_paying(invoices))
    payers = 3
    start = threading.Barrier(payers + 1)
    errors: list[BaseException] = []

    def pay_by_card(payer: int) -> None:
        # Each payer goes through every invoice from a different one, so some
        # attempts come before the import's batch, some during, some after.
        order = invoices[payer * 2 :] + invoices[: payer * 2]
        try:
            start.wait()
            for attempt, invoice in enumerate(order):
                # Refused when paid already, by card or by the bank transfer.
                with contextlib.suppress(PaymentsError):
                    payment_services.pay_invoice(
                        invoice,
                        amount=sek(125),
                        payment_method=card,
                        idempotency_key=key(f"{payer}-{attempt}"),
                        by=alice,
                    )
        except BaseException as exc:  # reported below; a thread cannot fail the test
            errors.append(exc)
        finally:
            connection.close()

    def import_file() -> None:
        try:
            start.wait()
            import_bank_file(content, filename="race.xml", by=SYSTEM)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay_by_card, args=(n,)) for n in range(payers)]
    threads.append(threading.Thread(target=import_file))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for invoice in invoices:
        invoice.refresh_from_db()
        captured = Payment.objects.filter(invoice=invoice).captured().count()
        # Paid once by card or by bank (a card payment held for risk review keeps the
        # amount reserved, so its bank line waits in review and nothing is paid yet).
        assert captured <= 1
        assert invoice.amount_paid == 12_500 * captured
    assert Payment.objects.captured().count() >= 1
    assert verify_chain().ok
