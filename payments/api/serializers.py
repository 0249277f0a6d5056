"""Payments' API bodies: payments and refunds, saved cards and the card-entry key.

Input serializers check types and shapes; ``payments.services`` and
``payments.saved_cards`` apply every rule (the payer, what is left to pay, the risk
rules, the refund permission and step-up) and name the field of what they refuse.
Amounts are integer minor units beside their currency. A card only ever arrives as the
browser's ciphertext (``payload``); no response holds more than brand, last 4 and expiry.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from billing.api.fields import CurrencyField, MinorUnitsField, StrictSerializer, moment
from payments.models import Payment, PaymentMethod, Refund


class PaymentSerializer(serializers.ModelSerializer):
    """One payment attempt; ``amount`` and ``refunded_amount`` in minor units of ``currency``."""

    invoice = serializers.PrimaryKeyRelatedField(read_only=True)
    payment_method = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Payment
        fields = (
            "id",
            "invoice",
            "amount",
            "currency",
            "method",
            "status",
            "payment_method",
            "card_brand",
            "card_last4",
            "failure_code",
            "failure_message",
            "refunded_amount",
            "created_at",
            "settled_at",
        )
        read_only_fields = fields

    def to_representation(self, payment: Payment) -> dict[str, Any]:
        """The declared fields, written out directly (as ``InvoiceSerializer`` does)."""
        return {
            "id": payment.pk,
            "invoice": payment.invoice_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "method": payment.method,
            "status": payment.status,
            "payment_method": payment.payment_method_id,
            "card_brand": payment.card_brand,
            "card_last4": payment.card_last4,
            "failure_code": payment.failure_code,
            "failure_message": payment.failure_message,
            "refunded_amount": payment.refunded_amount,
            "created_at": moment(payment.created_at),
            "settled_at": moment(payment.settled_at),
        }


class PaymentCreateSerializer(StrictSerializer):
    """Pay an invoice with one of its customer's saved cards (``payments.services.pay_invoice``)."""

    invoice = serializers.IntegerField(min_value=1)
    amount = MinorUnitsField()
    currency = CurrencyField()
    payment_method = serializers.IntegerField(min_value=1)


class RefundSerializer(serializers.ModelSerializer):
    """A refund of part or all of a captured payment."""

    payment = serializers.PrimaryKeyRelatedField(read_only=True)
    credit_note = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Refund
        fields = (
            "id",
            "payment",
            "amount",
            "currency",
            "status",
            "purpose",
            "reason",
            "credit_note",
            "failure_message",
            "created_at",
            "settled_at",
        )
        read_only_fields = fields


class RefundCreateSerializer(StrictSerializer):
    """Refund ``amount`` of a payment (``payments.services.refund_payment``): a reason, and
    what it is for (``credit_note``: the invoice stays settled; ``reopen``: owed again)."""

    amount = MinorUnitsField()
    currency = CurrencyField()
    reason = serializers.CharField(max_length=500, trim_whitespace=False)
    purpose = serializers.ChoiceField(choices=Refund.Purpose.choices)


class PaymentMethodSerializer(serializers.ModelSerializer):
    """A saved card: brand, last 4 and expiry, nothing more."""

    customer = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = PaymentMethod
        fields = ("id", "customer", "brand", "last4", "exp_month", "exp_year", "created_at")
        read_only_fields = fields


class PaymentMethodCreateSerializer(StrictSerializer):
    """A card to save, as the browser encrypted it to the card-entry key with the nonce
    ``GET payment-methods/entry-key/`` gave (``v1.<kid>.<base64url>``)."""

    payload = serializers.CharField(max_length=2000)


class EntryKeySerializer(serializers.Serializer):
    """What a card form encrypts to: RSA-OAEP (SHA-256) with label
    ``"tillit.card-entry.v1|" + kid``, over the JSON ``{number, expiry, cvc, nonce}``."""

    kid = serializers.CharField()
    public_key = serializers.CharField(help_text="The public key, DER (SPKI), base64.")
    nonce = serializers.CharField(help_text="One-time; sealed inside the ciphertext.")
    algorithm = serializers.CharField()
