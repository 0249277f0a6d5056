"""Delivery by email through a real SMTP server: PGP/MIME for customers with a key, a bare
single-use link for the others; attempts recorded, retried with backoff, failures kept."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from billing.delivery import pgp, services
from billing.delivery.models import Delivery, InvoiceLink
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from security.actors import Actor
from security.models import User
from tests.billing.delivery.conftest import (
    CUSTOMER_PASSPHRASE,
    PASSPHRASE,
    Keyholder,
    Mailbox,
    assert_nothing_financial,
)
from tests.factories import audit_events, with_role


def _message(mailbox: Mailbox, index: int = -1) -> email.message.EmailMessage:
    raw = mailbox.messages[index][2]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


@pytest.fixture
def alice_with_key(
    alice_company: Customer, alice_keyholder: Keyholder, clerk: User, gnupg_home: Path
) -> Customer:
    services.set_customer_pgp_key(alice_company, armored_key=alice_keyholder.public_key, by=clerk)
    return alice_company


@pytest.mark.django_db
def test_a_customer_with_a_key_gets_pgp_mime_that_decrypts_and_verifies_as_ours(
    alice_with_key: Customer,
    alice_document: InvoiceDocument,
    alice_keyholder: Keyholder,
    smtp_server: Mailbox,
) -> None:
    delivery = services.queue_delivery(alice_document.invoice, by=clerk_or_system())
    services.attempt_delivery(delivery.pk, by=clerk_or_system())

    message = _message(smtp_server)
    assert message.get_content_type() == "multipart/encrypted"
    assert message.get_param("protocol") == "application/pgp-encrypted"
    control, body = message.iter_parts()
    assert control.get_content_type() == "application/pgp-encrypted"
    assert "Version: 1" in control.get_payload()
    armored = body.get_payload(decode=True)
    assert b"-----BEGIN PGP MESSAGE-----" in armored
    # As the customer: import the company's published key, decrypt with her passphrase.
    alice_keyholder.gpg.import_keys(pgp.company_public_key().armored)
    wrong = alice_keyholder.gpg.decrypt(armored, passphrase="not alice's passphrase")
    assert not wrong.ok
    plain = alice_keyholder.gpg.decrypt(armored, passphrase=CUSTOMER_PASSPHRASE)
    assert plain.ok, plain.status
    assert plain.valid and plain.pubkey_fingerprint == pgp.company_key_fingerprint()
    inner = email.message_from_bytes(plain.data, policy=email.policy.default)
    [pdf] = [p for p in inner.walk() if p.get_content_type() == "application/pdf"]
    content = pdf.get_payload(decode=True)
    assert isinstance(content, bytes)
    assert hashlib.sha256(content).hexdigest() == alice_document.sha256
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SENT
    [event] = audit_events("invoice.delivery_attempted", alice_document.invoice)
    assert event.details["outcome"] == "sent" and event.details["channel"] == "pgp"


@pytest.mark.django_db
def test_signing_with_a_wrong_company_passphrase_fails_even_right_after_key_creation(
    alice_with_key: Customer,
    alice_document: InvoiceDocument,
    smtp_server: Mailbox,
    settings: Any,
) -> None:
    pgp.company_key_fingerprint()  # created now, with the right passphrase
    settings.DOCUMENTS_KEY_PASSPHRASE = "a wrong passphrase"
    delivery = services.queue_delivery(alice_document.invoice, by=clerk_or_system())

    after = services.attempt_delivery(delivery.pk, by=clerk_or_system())

    assert after.status == Delivery.Status.QUEUED
    assert "could not sign and encrypt" in after.last_error
    assert "a wrong passphrase" not in after.last_error
    assert smtp_server.messages == []


def clerk_or_system() -> Actor:
    from audit import SYSTEM

    return SYSTEM


@pytest.mark.django_db
def test_a_customer_without_a_key_gets_only_a_link_no_amount_no_account_no_attachment(
    alice_document: InvoiceDocument, smtp_server: Mailbox, gnupg_home: Path
) -> None:
    invoice = alice_document.invoice
    delivery = services.queue_delivery(invoice, by=clerk_or_system())
    services.attempt_delivery(delivery.pk, by=clerk_or_system())

    message = _message(smtp_server)
    raw = smtp_server.messages[-1][2].decode("utf-8", errors="replace")
    assert not message.is_multipart()
    assert "/l/" in raw
    assert "%PDF" not in raw and "application/pdf" not in raw
    # What a reader sees: subject and body, less the random link token and the
    # Message-ID, whose random digits could hold any short number by chance.
    readable = re.sub(r"/l/[A-Za-z0-9_-]+/", "/l/TOKEN/", message.get_content())
    assert_nothing_financial(readable + "\n" + str(message["Subject"]), invoice)
    assert Delivery.objects.get(pk=delivery.pk).channel == Delivery.Channel.LINK


def _link_token(mailbox: Mailbox) -> str:
    match = re.search(r"/l/([A-Za-z0-9_-]+)/", _message(mailbox).get_content())
    assert match
    return match.group(1)


@pytest.mark.django_db
def test_only_the_hash_of_a_link_token_is_stored(
    alice_document: InvoiceDocument, smtp_server: Mailbox, gnupg_home: Path
) -> None:
    delivery = services.queue_delivery(alice_document.invoice, by=clerk_or_system())
    services.attempt_delivery(delivery.pk, by=clerk_or_system())

    token = _link_token(smtp_server)
    [link] = InvoiceLink.objects.all()
    assert link.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(InvoiceLink.objects.values()))


@pytest.mark.django_db
def test_a_refused_recipient_is_recorded_retried_with_backoff_then_failed_and_retryable(
    alice_document: InvoiceDocument,
    smtp_server: Mailbox,
    gnupg_home: Path,
    settings: Any,
    clerk: User,
) -> None:
    settings.DELIVERY_MAX_ATTEMPTS = 3
    smtp_server.refuse.add(alice_document.invoice.customer.email)
    delivery = services.queue_delivery(alice_document.invoice, by=clerk_or_system())

    first = services.attempt_delivery(delivery.pk, by=clerk_or_system())
    assert first.status == Delivery.Status.QUEUED
    assert first.next_attempt_at is not None
    gap_1 = first.next_attempt_at - timezone.now()
    second = services.attempt_delivery(delivery.pk, by=clerk_or_system())
    assert second.next_attempt_at is not None
    gap_2 = second.next_attempt_at - timezone.now()
    third = services.attempt_delivery(delivery.pk, by=clerk_or_system())

    assert gap_2 > gap_1  # exponential backoff
    assert third.status == Delivery.Status.FAILED
    assert [a.succeeded for a in third.attempt_log.all()] == [False, False, False]
    assert "550" in third.last_error
    smtp_server.refuse.clear()
    clerk = with_role(clerk, "Billing clerk")
    services.retry_delivery(third, by=clerk)
    assert services.attempt_delivery(delivery.pk, by=clerk).status == Delivery.Status.SENT
    assert len(audit_events("invoice.delivery_retried")) == 1


@pytest.mark.django_db
def test_an_unreachable_mail_server_is_a_recorded_failed_attempt(
    alice_document: InvoiceDocument, settings: Any, gnupg_home: Path
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: nothing listens
    settings.EMAIL_TIMEOUT = 2
    delivery = services.queue_delivery(alice_document.invoice, by=clerk_or_system())

    after = services.attempt_delivery(delivery.pk, by=clerk_or_system())

    assert after.status == Delivery.Status.QUEUED and after.attempts == 1
    assert after.last_error == "ConnectionRefusedError"


@pytest.mark.django_db
def test_finalizing_in_sync_mode_signs_and_delivers(
    make_draft_invoice: Callable[..., Invoice],
    alice_company: Customer,
    clerk: User,
    settings: Any,
    smtp_server: Mailbox,
    gnupg_home: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from billing import services as billing_services

    settings.DOCUMENTS_ON_FINALIZE = "sync"
    with django_capture_on_commit_callbacks(execute=True):
        invoice = billing_services.finalize_invoice(make_draft_invoice(alice_company), by=clerk)

    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1
    assert Delivery.objects.get(invoice=invoice).status == Delivery.Status.SENT
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db
def test_no_passphrase_or_token_reaches_the_logs(
    alice_with_key: Customer,
    alice_document: InvoiceDocument,
    smtp_server: Mailbox,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    services.queue_delivery(alice_document.invoice, by=clerk_or_system())
    services.send_due_deliveries(by=clerk_or_system())
    services.remove_customer_pgp_key(alice_with_key, by=clerk_or_system())
    link_delivery = services.queue_delivery(alice_document.invoice, by=clerk_or_system())
    services.attempt_delivery(link_delivery.pk, by=clerk_or_system())
    token = _link_token(smtp_server)

    # Our application's logs (not the test SMTP server's own debug log of what it received).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail."))
    assert PASSPHRASE not in logged
    assert token not in logged
    assert len(smtp_server.messages) == 2


@pytest.mark.django_db
def test_overdue_invoices_get_one_reminder_by_the_same_rules(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    smtp_server: Mailbox,
    gnupg_home: Path,
    settings: Any,
) -> None:
    import datetime

    import time_machine
    from django.core.management import call_command

    invoice = make_open_invoice(alice_company)
    later = timezone.now() + datetime.timedelta(days=invoice.payment_terms_days + 3)
    with time_machine.travel(later, tick=False):
        call_command("send_reminders")
        call_command("send_reminders")  # not twice within DELIVERY_REMINDER_DAYS
        services.send_due_deliveries(by=clerk_or_system())

    [reminder] = Delivery.objects.filter(kind=Delivery.Kind.REMINDER)
    assert reminder.invoice == invoice and reminder.status == Delivery.Status.SENT
    # Alice's company reads Swedish: the reminder is written in it.
    assert "betalningspåminnelse" in _message(smtp_server)["Subject"].lower()
    assert str(invoice.gross.as_decimal()) not in _message(smtp_server).get_content()
