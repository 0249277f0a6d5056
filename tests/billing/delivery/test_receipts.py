"""Receipts: when an invoice turns paid, its customer is told once, by the delivery rules
(PGP/MIME with a key; otherwise a bare single-use link to the receipt page)."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from billing import services as billing
from billing.delivery import pgp, services
from billing.delivery.models import Delivery
from billing.models import Customer, Invoice
from billing.money import Money
from security.models import User
from tests.billing.delivery.conftest import (
    CUSTOMER_PASSPHRASE,
    Keyholder,
    Mailbox,
    assert_nothing_financial,
)
from tests.factories import audit_events


def _pay(invoice: Invoice, minor: int, clerk: User, capture: Any) -> Invoice:
    """Record a payment and run what the commit triggers, as the worker would."""
    with capture(execute=True):
        return billing.record_payment_amount(
            invoice, amount=Money(minor, invoice.currency), by=clerk, reference="bank"
        )


@pytest.fixture
def sync_jobs(settings: Any, gnupg_home: Path) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "sync"


@pytest.mark.django_db
def test_a_paid_invoice_sends_one_link_receipt_with_no_amount_that_opens_the_receipt_page(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    alice: User,
    clerk: User,
    smtp_server: Mailbox,
    sync_jobs: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invoice = make_open_invoice(alice_company)

    _pay(invoice, invoice.gross_total, clerk, django_capture_on_commit_callbacks)

    [receipt] = Delivery.objects.filter(invoice=invoice, kind=Delivery.Kind.RECEIPT)
    assert receipt.channel == Delivery.Channel.LINK
    assert receipt.status == Delivery.Status.SENT
    [(_, recipients, raw)] = smtp_server.messages
    assert recipients == [alice_company.email]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    assert not message.is_multipart()
    body = message.get_content()
    # In the customer's language (Alice's company reads Swedish).
    assert "är betald" in body and "betalningskvitto" in str(message["Subject"]).lower()
    readable = re.sub(r"/l/[A-Za-z0-9_-]+/", "/l/TOKEN/", body)
    assert_nothing_financial(readable + "\n" + str(message["Subject"]), invoice)
    assert b"application/pdf" not in raw
    match = re.search(r"/l/[A-Za-z0-9_-]+/", body)
    assert match
    link = match.group(0)
    # Still behind the login: an anonymous visitor is sent to sign in, nothing is used.
    assert Client().get(link).status_code == 302
    alice_client = Client()
    alice_client.force_login(alice)
    response = alice_client.get(link)
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:receipt", args=[invoice.pk])
    assert alice_client.get(link).status_code == 410  # single use
    [queued] = audit_events("invoice.delivery_queued", invoice)
    assert queued.details["kind"] == "receipt"


@pytest.mark.django_db
def test_bob_cannot_use_alices_receipt_link(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    bob: User,
    clerk: User,
    smtp_server: Mailbox,
    sync_jobs: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invoice = make_open_invoice(alice_company)
    _pay(invoice, invoice.gross_total, clerk, django_capture_on_commit_callbacks)
    match = re.search(rb"/l/[A-Za-z0-9_-]+/", smtp_server.messages[-1][2])
    assert match

    bob_client = Client()
    bob_client.force_login(bob)

    assert bob_client.get(match.group(0).decode()).status_code == 404
    assert audit_events("invoice.link_opened") == []


@pytest.mark.django_db
def test_a_customer_with_a_key_gets_the_receipt_pgp_encrypted_with_the_amount(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    alice_keyholder: Keyholder,
    clerk: User,
    smtp_server: Mailbox,
    sync_jobs: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    services.set_customer_pgp_key(alice_company, armored_key=alice_keyholder.public_key, by=clerk)
    invoice = make_open_invoice(alice_company)

    paid = _pay(invoice, invoice.gross_total, clerk, django_capture_on_commit_callbacks)

    [(_, _, raw)] = smtp_server.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/encrypted"
    armored = list(message.iter_parts())[1].get_payload(decode=True)
    alice_keyholder.gpg.import_keys(pgp.company_public_key().armored)
    plain = alice_keyholder.gpg.decrypt(armored, passphrase=CUSTOMER_PASSPHRASE)
    assert plain.ok and plain.valid
    assert plain.pubkey_fingerprint == pgp.company_key_fingerprint()
    inner = email.message_from_bytes(plain.data, policy=email.policy.default)
    assert isinstance(inner, email.message.EmailMessage)
    text = inner.get_content()
    assert invoice.display_number in text
    assert paid.money(paid.amount_paid).format("sv") in text  # "2 765,53 SEK", as Alice reads
    assert reverse("portal:receipt", args=[invoice.pk]) in text
    assert Delivery.objects.get(kind=Delivery.Kind.RECEIPT).channel == Delivery.Channel.PGP


@pytest.mark.django_db
def test_the_receipt_is_queued_once_only_when_fully_paid(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    smtp_server: Mailbox,
    sync_jobs: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invoice = make_open_invoice(alice_company)
    half = invoice.gross_total // 2

    _pay(invoice, half, clerk, django_capture_on_commit_callbacks)
    assert not Delivery.objects.filter(kind=Delivery.Kind.RECEIPT).exists()

    _pay(invoice, invoice.gross_total - half, clerk, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):  # refunded, then paid again
        billing.record_refund_reopening(
            invoice, amount=Money(100, invoice.currency), reason="reversed", by=clerk
        )
    _pay(invoice, 100, clerk, django_capture_on_commit_callbacks)
    assert services.queue_receipt(invoice, by=SYSTEM) is None  # a racing job: no second one

    assert Delivery.objects.filter(kind=Delivery.Kind.RECEIPT).count() == 1
    # One receipt, and the notice that the reversed payment is owed again, in Alice's Swedish.
    subjects = sorted(
        str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"]).strip()
        for _sender, _to, raw in smtp_server.messages
    )
    assert [s.split(" faktura ")[0] for s in subjects] == [
        "Betalningskvitto för",
        "Tillbakadragen betalning på",
    ]


@pytest.mark.django_db
def test_a_rolled_back_payment_queues_nothing_and_async_mode_enqueues_one_job(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.db import transaction
    from django_q.models import OrmQ

    invoice = make_open_invoice(alice_company)
    settings.DOCUMENTS_ON_FINALIZE = "async"

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        billing.record_payment_amount(
            invoice, amount=Money(invoice.gross_total, invoice.currency), by=clerk
        )
        raise RuntimeError("the surrounding work failed")
    assert callbacks == [] and OrmQ.objects.count() == 0

    _pay(invoice, invoice.gross_total, clerk, django_capture_on_commit_callbacks)

    [job] = OrmQ.objects.all()
    assert job.task["func"] == "billing.delivery.tasks.queue_receipts_job"
    assert job.task["args"] == ([invoice.pk],)


@pytest.mark.django_db
def test_with_background_work_off_a_payment_queues_no_receipt(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invoice = make_open_invoice(alice_company)  # the test settings: DOCUMENTS_ON_FINALIZE=off

    _pay(invoice, invoice.gross_total, clerk, django_capture_on_commit_callbacks)

    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_one_receipt_job_for_many_invoices_queues_the_others_when_one_fails(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from billing.delivery.tasks import queue_receipts_job

    invoice = make_open_invoice(alice_company)
    _pay(invoice, invoice.gross_total, clerk, django_capture_on_commit_callbacks)
    missing = invoice.pk + 1000

    with pytest.raises(Invoice.DoesNotExist), django_capture_on_commit_callbacks(execute=False):
        queue_receipts_job([missing, invoice.pk])

    assert Delivery.objects.filter(invoice=invoice, kind=Delivery.Kind.RECEIPT).count() == 1
