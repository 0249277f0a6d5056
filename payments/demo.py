"""The payments side of the demo: work waiting for every role, and history for the charts.

``seed_payments_demo`` runs after ``billing.demo.seed_demo`` (``manage.py seed_demo``) and,
like it, makes only what is missing, through the services a user would go through:

- three months of bank transfers: the invoices billing's demo left for the bank
  (``billing.demo.HISTORY_PLANS``), each paid by a camt.054 file booked a few days after
  it was issued (the operator's chart by day);
- today's card payments by the portal customer: one that went through, one declined, one
  whose outcome is unknown (the sandbox's timeout card: reconciled by the background
  job), and one held for the fraud analyst (a new card above the review limit);
- ``docs/samples/camt054-demo.xml``: a bank file the operator imports from the admin, with
  a line that pays an open invoice, one that pays part of another, one whose reference
  matches nothing (``sample_camt054_for_demo`` writes it from the seeded invoices).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit import SYSTEM
from billing import services as billing_services
from billing.demo import BANK_HISTORY, HISTORY_PLANS, InvoicePlan, invoice_note
from billing.models import Customer, Invoice
from billing.money import Money
from payments import services
from payments.models import BankFile, Payment
from payments.reconciliation.sample import sample_camt054
from payments.reconciliation.services import import_bank_file
from payments.vault.cards import Card
from payments.vault.services import tokenize

SAMPLE_FILE = Path(settings.BASE_DIR) / "docs" / "samples" / "camt054-demo.xml"
SAMPLE_MESSAGE_ID = "TILLIT-DEMO-SAMPLE-1"
# A fixed booking date: the committed sample stays the same file whenever the demo is seeded.
SAMPLE_BOOKING_DATE = "2026-12-01"

CARD_CUSTOMER = "Astrid Lindqvist"
CARD_USER = "astrid"

# The sandbox's test cards (payments.gateways.sandbox): what each demo payment meets.
CARD_PAYMENTS = [
    # key, card number, line price (SEK, net of 25 % VAT). Three different cards at most:
    # a fourth within the hour is card testing (RiskSettings.max_new_cards_per_customer),
    # and the demo customer must still be able to pay with 4242 4242 4242 4242 herself.
    ("held", "4242424242424242", "9600.00"),  # a new card above 10,000 SEK: review
    ("approved", "4242424242424242", "480.00"),
    ("unknown", "4000000000000119", "720.00"),  # timeout: reconciled later
    ("declined", "4000000000000002", "360.00"),
]


@dataclass(frozen=True)
class PaymentsDemo:
    """What the payments demo holds after seeding."""

    history_files: int
    card_payments: dict[str, str]


def seed_payments_demo() -> PaymentsDemo:
    """Make what is missing of the payments demo (idempotent); see the module's doc."""
    today = timezone.localdate()
    files = sum(
        _seed_history_payment(plan, days_to_pay, today)
        for plan, (_days_ago, days_to_pay) in zip(HISTORY_PLANS, BANK_HISTORY, strict=True)
    )
    cards = _seed_card_payments()
    return PaymentsDemo(history_files=files, card_payments=cards)


def _seed_history_payment(plan: InvoicePlan, days_to_pay: int, today: datetime.date) -> int:
    message_id = f"TILLIT-DEMO-BANK-{plan.key}"
    if BankFile.objects.filter(message_id=message_id).exists():
        return 0
    invoice = Invoice.objects.invoices().filter(notes=invoice_note(plan)).first()
    if invoice is None or invoice.status != Invoice.Status.OPEN:
        return 0
    booked = min(today - datetime.timedelta(days=plan.days_ago - days_to_pay), today)
    content = sample_camt054(
        [
            {
                "amount": Money(invoice.amount_due, invoice.currency).as_decimal(),
                "reference": invoice.ocr_reference,
                "debtor": invoice.customer.name,
            }
        ],
        message_id=message_id,
        booking_date=booked.isoformat(),
    )
    import_bank_file(content, filename=f"{message_id.lower()}.xml", by=SYSTEM)
    return 1


def _line(description: str, price: str) -> dict[str, Any]:
    return {
        "description": description,
        "quantity": "1",
        "unit_price": price,
        "vat_category": "S",
        "vat_rate": "25",
    }


def _seed_card_payments() -> dict[str, str]:
    user = get_user_model().objects.filter(username=CARD_USER).first()
    customer = Customer.objects.filter(name=CARD_CUSTOMER).first()
    if user is None or customer is None:
        return {}
    outcomes = {}
    for key, number, price in CARD_PAYMENTS:
        note = f"Demo card payment: {key}."
        invoice = Invoice.objects.invoices().filter(notes=note).first()
        if invoice is None:
            invoice = billing_services.finalize_invoice(
                billing_services.create_draft_invoice(
                    customer=customer, by=SYSTEM, lines=[_line("Garden design", price)], notes=note
                ),
                by=SYSTEM,
            )
        payment = Payment.objects.filter(invoice=invoice).order_by("pk").first()
        if payment is None:
            card = tokenize(
                Card.from_input(number=number, expiry="12/30", cvc="123"),
                customer=customer,
                by=user,
            )
            payment = services.pay_invoice(
                invoice,
                amount=Money(invoice.amount_due, invoice.currency),
                payment_method=card,
                idempotency_key=f"demo-card-{key}",
                by=user,
            )
        outcomes[key] = payment.status
    return outcomes


def sample_camt054_for_demo() -> bytes:
    """The demo's sample bank file, from the seeded invoices: a line paying the oldest open
    demo invoice in full, a line paying half of the next, a line with an unknown reference."""
    open_ones = list(
        Invoice.objects.open()
        .filter(notes__startswith="Demo invoice D", amount_paid=0, currency="SEK")
        .order_by("issue_date", "pk")[:2]
    )
    if len(open_ones) < 2:
        raise ValueError("the demo has fewer than two open unpaid SEK invoices: run seed_demo")
    full, partial = open_ones
    half = Money(partial.amount_due // 2, partial.currency)
    return sample_camt054(
        [
            {
                "amount": Money(full.amount_due, full.currency).as_decimal(),
                "reference": full.ocr_reference,
                "debtor": full.customer.name,
            },
            {
                "amount": half.as_decimal(),
                "reference": partial.ocr_reference,
                "debtor": partial.customer.name,
            },
            {"amount": "1875.00", "reference": "4711000000001", "debtor": "Okänd Betalare"},
        ],
        message_id=SAMPLE_MESSAGE_ID,
        booking_date=SAMPLE_BOOKING_DATE,
        batch=False,
    )
