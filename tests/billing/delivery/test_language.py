"""Emails follow the customer's language: the portal link, the receipt, the reminder."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from audit import SYSTEM
from billing import services as billing_services
from billing.delivery import services
from billing.documents.models import InvoiceDocument
from billing.models import Customer
from tests.billing.delivery.conftest import Mailbox

pytestmark = pytest.mark.django_db


def _sent(mailbox: Mailbox) -> email.message.EmailMessage:
    message = email.message_from_bytes(mailbox.messages[-1][2], policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def _deliver(document: InvoiceDocument) -> None:
    delivery = services.queue_delivery(document.invoice, by=SYSTEM)
    services.attempt_delivery(delivery.pk, by=SYSTEM)


def test_a_swedish_customer_gets_the_invoice_email_in_swedish(
    alice_document: InvoiceDocument, smtp_server: Mailbox, gnupg_home: Path
) -> None:
    _deliver(alice_document)

    message = _sent(smtp_server)
    number = alice_document.invoice.display_number
    assert message["Subject"] == f"Faktura {number} från Tillit Demo AB"
    body = message.get_content()
    assert body.startswith("Hej!")
    assert f"har skickat en ny faktura till dig: {number}." in body
    assert "Länken fungerar en gång och slutar gälla om 14 dagar." in body


def test_after_switching_to_english_the_next_email_is_in_english(
    alice_document: InvoiceDocument,
    alice_company: Customer,
    smtp_server: Mailbox,
    gnupg_home: Path,
) -> None:
    billing_services.set_customer_language(alice_company, language="en", by=SYSTEM)

    _deliver(alice_document)

    message = _sent(smtp_server)
    number = alice_document.invoice.display_number
    assert message["Subject"] == f"Invoice {number} from Tillit Demo AB"
    assert "The link works once and expires in 14 days." in message.get_content()
