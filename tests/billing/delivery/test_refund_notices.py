"""After a refund the customer hears of it, by the delivery rules: with a credit note, the
signed credit note and a refund receipt; reopened, a notice that the amount is owed again."""

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

from billing import services as billing
from billing.delivery import pgp, services
from billing.delivery.models import Delivery
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from billing.money import Money
from security.models import User
from tests.billing.delivery.conftest import (
    CUSTOMER_PASSPHRASE,
    Keyholder,
    Mailbox,
    assert_nothing_financial,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sync_jobs(settings: Any, gnupg_home: Path) -> None:
    settings.DOCUMENTS_ON_FINALIZE = "sync"


@pytest.fixture
def paid_invoice(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, clerk: User
) -> Invoice:
    invoice = make_open_invoice(alice_company)
    return billing.record_payment_amount(invoice, amount=invoice.gross, by=clerk)


def _messages(mailbox: Mailbox) -> dict[str, Any]:
    """The messages received, by the first word of their subject (Alice reads Swedish)."""
    parsed = [
        email.message_from_bytes(raw, policy=email.policy.default) for *_, raw in mailbox.messages
    ]
    return {str(m["Subject"]).split()[0]: m for m in parsed}


def test_a_refund_with_a_credit_note_sends_the_signed_note_and_a_refund_receipt(
    paid_invoice: Invoice,
    alice: User,
    clerk: User,
    smtp_server: Mailbox,
    sync_jobs: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        note = billing.record_refund_with_credit_note(
            paid_invoice, amount=Money(10_000, "SEK"), reason="one item returned", by=clerk
        )

    assert InvoiceDocument.objects.filter(invoice=note).exists()  # rendered and signed
    kinds = sorted(Delivery.objects.values_list("kind", "invoice_id", "status"))
    assert kinds == sorted([("invoice", note.pk, "sent"), ("refund", paid_invoice.pk, "sent")])
    messages = _messages(smtp_server)
    assert set(messages) == {"Kreditfaktura", "Återbetalningskvitto"}
    receipt = messages["Återbetalningskvitto"]
    body = receipt.get_content()
    assert paid_invoice.display_number in str(receipt["Subject"])
    readable = re.sub(r"/l/[A-Za-z0-9_-]+/", "/l/TOKEN/", body)
    assert_nothing_financial(readable + "\n" + str(receipt["Subject"]), paid_invoice)
    link = re.search(r"/l/[A-Za-z0-9_-]+/", body)
    assert link
    alice_client = Client()
    alice_client.force_login(alice)
    opened = alice_client.get(link.group(0))
    assert opened["Location"] == reverse("portal:invoice", args=[paid_invoice.pk])


def test_a_reopened_invoice_is_told_pgp_encrypted_with_the_amount_now_due(
    paid_invoice: Invoice,
    alice_company: Customer,
    alice_keyholder: Keyholder,
    clerk: User,
    smtp_server: Mailbox,
    sync_jobs: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    services.set_customer_pgp_key(alice_company, armored_key=alice_keyholder.public_key, by=clerk)

    with django_capture_on_commit_callbacks(execute=True):
        reopened = billing.record_refund_reopening(
            paid_invoice, amount=Money(10_000, "SEK"), reason="chargeback", by=clerk
        )

    [(_, _, raw)] = smtp_server.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/encrypted"
    assert str(message["Subject"]).strip().startswith("Tillbakadragen betalning på faktura")
    armored = list(message.iter_parts())[1].get_payload(decode=True)
    alice_keyholder.gpg.import_keys(pgp.company_public_key().armored)
    plain = alice_keyholder.gpg.decrypt(armored, passphrase=CUSTOMER_PASSPHRASE)
    assert plain.ok and plain.valid
    inner = email.message_from_bytes(plain.data, policy=email.policy.default)
    assert isinstance(inner, email.message.EmailMessage)
    text = inner.get_content()
    assert "ska betalas igen" in text
    assert reopened.due.format("sv") in text
    assert reverse("portal:invoice", args=[paid_invoice.pk]) in text
