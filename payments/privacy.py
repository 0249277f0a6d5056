"""Payments' part of privacy: its section of a customer's export, its step of an erasure
and of the daily retention, registered with ``billing.privacy.registry`` at start-up.

Cards are deleted through the vault's own service (``delete_payment_method``: the
ciphertext is erased, which is crypto-shredding of that record; brand and last 4 stay,
as on the payments that used the card). Billing never imports this module.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from audit import record
from payments.models import BankLine, Payment, PaymentMethod
from payments.vault.services import delete_payment_method
from security.actors import Actor


def export_section(customer: Any) -> dict[str, Any]:
    """The customer's saved cards (what may be shown of them) and payments."""
    cards = PaymentMethod.objects.filter(customer=customer, saved=True).order_by("created_at")
    payments = (
        Payment.objects.filter(invoice__customer=customer)
        .select_related("invoice")
        .order_by("created_at", "pk")
    )
    return {
        "saved_cards": [
            {
                "brand": card.brand,
                "last4": card.last4,
                "expiry": f"{card.exp_month:02d}/{card.exp_year}",
                "status": card.status,
                "created_at": card.created_at.isoformat(),
            }
            for card in cards
        ],
        "payments": [
            {
                "invoice": payment.invoice.display_number,
                "amount": payment.amount,
                "currency": payment.currency,
                "method": payment.method,
                "status": payment.status,
                "card": f"{payment.card_brand} {payment.card_last4}".strip(),
                "created_at": payment.created_at.isoformat(),
            }
            for payment in payments
        ],
    }


def erase_customer_payment_data(customer: Any, *, by: Actor, pseudonym: str) -> dict[str, int]:
    """Delete every card of the customer (vault service, audited per card) and forget the
    addresses its payments came from and the payer names on its bank lines."""
    cards = 0
    for method in PaymentMethod.objects.filter(
        customer=customer, status=PaymentMethod.Status.ACTIVE
    ):
        delete_payment_method(method, by=by)
        cards += 1
    addresses = (
        Payment.objects.filter(invoice__customer=customer)
        .exclude(client_ip="")
        .update(client_ip="")
    )
    names = (
        BankLine.objects.filter(invoice__customer=customer)
        .exclude(debtor_name="")
        .update(debtor_name=f"erased {pseudonym[:12]}")
    )
    return {"cards_deleted": cards, "payment_addresses": addresses, "bank_payer_names": names}


def delete_unused_cards(*, by: Actor, now: datetime.datetime) -> dict[str, int]:
    """Saved cards not used (nor saved) within PRIVACY_CARD_UNUSED_MONTHS are deleted."""
    cutoff = now - datetime.timedelta(days=30 * settings.PRIVACY_CARD_UNUSED_MONTHS)
    stale = (
        PaymentMethod.objects.filter(status=PaymentMethod.Status.ACTIVE, created_at__lt=cutoff)
        .annotate(last_used=Max("payments__created_at"))
        .filter(Q(last_used__isnull=True) | Q(last_used__lt=cutoff))
    )
    deleted = 0
    for method in stale:
        with transaction.atomic():
            delete_payment_method(method, by=by)
        deleted += 1
    if deleted:
        record(
            "privacy.unused_cards_deleted",
            actor=by,
            count=deleted,
            months=settings.PRIVACY_CARD_UNUSED_MONTHS,
        )
    return {"unused_cards_deleted": deleted}


def register() -> None:
    """Called by ``PaymentsConfig.ready``."""
    from billing.privacy import registry

    registry.register_export_section("payments", export_section)
    registry.register_erasure_step("payments", erase_customer_payment_data)
    registry.register_retention_step("payments", delete_unused_cards)
    registry.register_invoice_deletion_step("payments", remove_for_invoice_deletion)


def remove_for_invoice_deletion(invoice_ids: list[int], *, by: Actor) -> dict[str, int]:
    """Payments, refunds and bank lines of invoices past their retention (billing deletes
    the invoices next, in the same transaction). Bank lines reversing a deleted line go
    first; the bank files themselves stay."""
    from payments.models import FraudLabel, Refund

    payments = Payment.objects.filter(invoice_id__in=invoice_ids)
    refunds = Refund.objects.filter(Q(payment__in=payments) | Q(credit_note_id__in=invoice_ids))
    lines = BankLine.objects.filter(
        Q(invoice_id__in=invoice_ids)
        | Q(pk__in=payments.exclude(bank_line__isnull=True).values("bank_line_id"))
    )
    line_ids = list(lines.values_list("pk", flat=True))
    done = {"refunds": refunds.delete()[0]}
    # What the payments turned out to be goes with them (the model's labels).
    labels = FraudLabel.objects.filter(payment__in=payments).delete()[0]
    if labels:
        done["fraud_labels"] = labels
    done["payments"] = Payment.objects.filter(invoice_id__in=invoice_ids).delete()[0]
    reversing = BankLine.objects.filter(reverses_id__in=line_ids).delete()[0]
    done["bank_lines"] = reversing + BankLine.objects.filter(pk__in=line_ids).delete()[0]
    return done
