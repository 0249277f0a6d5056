"""Billing's API bodies: customers, invoices and their lines, credit notes, verification.

Output serializers read; input serializers (``StrictSerializer``) check types and shapes
and hand plain values to ``billing.services``, which apply every rule and name the
field of any value they refuse. Money is integer minor units beside its currency.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing import vat
from billing.api.fields import (
    CurrencyField,
    DecimalStringField,
    MinorUnitsField,
    StrictSerializer,
    day,
    moment,
)
from billing.models import Customer, Invoice, InvoiceLine

# --- customers ---------------------------------------------------------------------------


class CustomerSerializer(serializers.ModelSerializer):
    """A customer (buyer) as the API shows it."""

    class Meta:
        model = Customer
        fields = (
            "id",
            "name",
            "kind",
            "identity_number",
            "vat_id",
            "email",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "language",
            "currency",
            "payment_terms_days",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class CustomerWriteSerializer(StrictSerializer):
    """The fields ``billing.services.create_customer`` and ``update_customer`` accept."""

    name = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=10, required=False)
    identity_number = serializers.CharField(max_length=40, required=False, allow_blank=True)
    vat_id = serializers.CharField(max_length=40, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254)
    address_line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False)
    language = serializers.CharField(max_length=2, required=False)
    currency = CurrencyField(required=False)
    payment_terms_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=365
    )


# --- invoices ----------------------------------------------------------------------------


_DECIMAL_STRING = extend_schema_field(
    {"type": "string", "pattern": r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$", "example": "12.50"}
)


@_DECIMAL_STRING
class _Decimal(DecimalStringField):
    pass


class InvoiceLineSerializer(serializers.ModelSerializer):
    """One line: quantity x unit price (decimal strings), its VAT, its net in minor units."""

    quantity = _Decimal(read_only=True)
    unit_price = _Decimal(read_only=True)
    vat_rate = _Decimal(read_only=True)

    class Meta:
        model = InvoiceLine
        fields = (
            "id",
            "position",
            "description",
            "quantity",
            "unit",
            "unit_price",
            "vat_category",
            "vat_rate",
            "net_amount",
        )
        read_only_fields = fields


class VatGroupSerializer(serializers.Serializer):
    """One VAT group (minor units): a finalized invoice's, or a draft's as finalization
    will compute it."""

    category = serializers.CharField()
    rate = serializers.CharField()
    taxable_amount = serializers.IntegerField()
    vat_amount = serializers.IntegerField()


class InvoiceSerializer(serializers.ModelSerializer):
    """An invoice or credit note; amounts in minor units of ``currency``.

    The fields declare the schema; ``to_representation`` writes them out directly (a
    ModelSerializer builds its fields anew for every instance, which cost more CPU than
    the rest of the response; the schema test holds the two to the same shape)."""

    number = serializers.CharField(source="display_number", read_only=True)
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    credited_invoice = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    amount_due = serializers.IntegerField(read_only=True)

    class Meta:
        model = Invoice
        fields: tuple[str, ...] = (
            "id",
            "kind",
            "number",
            "status",
            "customer",
            "credited_invoice",
            "currency",
            "issue_date",
            "due_date",
            "payment_terms_days",
            "net_total",
            "vat_total",
            "gross_total",
            "amount_paid",
            "amount_credited",
            "amount_due",
            "ocr_reference",
            "notes",
            "finalized_at",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = fields

    def to_representation(self, invoice: Invoice) -> dict[str, Any]:
        return {
            "id": invoice.pk,
            "kind": invoice.kind,
            "number": invoice.display_number,
            "status": invoice.status,
            "customer": invoice.customer_id,
            "credited_invoice": invoice.credited_invoice_id,
            "currency": invoice.currency,
            "issue_date": day(invoice.issue_date),
            "due_date": day(invoice.due_date),
            "payment_terms_days": invoice.payment_terms_days,
            "net_total": invoice.net_total,
            "vat_total": invoice.vat_total,
            "gross_total": invoice.gross_total,
            "amount_paid": invoice.amount_paid,
            "amount_credited": invoice.amount_credited,
            "amount_due": invoice.amount_due,
            "ocr_reference": invoice.ocr_reference,
            "notes": invoice.notes,
            "finalized_at": moment(invoice.finalized_at),
            "created_at": moment(invoice.created_at),
            "updated_at": moment(invoice.updated_at),
        }


class InvoiceDetailSerializer(InvoiceSerializer):
    """An invoice with its lines and its VAT per group (a draft's totals computed from its
    lines as finalization will compute them)."""

    lines = serializers.SerializerMethodField()
    vat_breakdown = serializers.SerializerMethodField()

    class Meta(InvoiceSerializer.Meta):
        fields: tuple[str, ...] = (*InvoiceSerializer.Meta.fields, "lines", "vat_breakdown")
        read_only_fields: tuple[str, ...] = fields

    @extend_schema_field(InvoiceLineSerializer(many=True))
    def get_lines(self, invoice: Invoice) -> Any:
        """The lines the view read (``context["lines"]``: one compiled query)."""
        return [
            {
                "id": line.pk,
                "position": line.position,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit": line.unit,
                "unit_price": str(line.unit_price),
                "vat_category": line.vat_category,
                "vat_rate": str(line.vat_rate),
                "net_amount": line.net_amount,
            }
            for line in self.context["lines"]
        ]

    def to_representation(self, invoice: Invoice) -> dict[str, Any]:
        shown = {
            **super().to_representation(invoice),
            "lines": self.get_lines(invoice),
            "vat_breakdown": self.get_vat_breakdown(invoice),
        }
        if invoice.is_draft:
            # A draft's totals as finalization will compute them from its lines (the
            # stored ones are set at finalization), as the admin's draft page shows them.
            totals = self._draft_totals()
            shown |= {
                "net_total": totals.net,
                "vat_total": totals.vat,
                "gross_total": totals.gross,
                "amount_due": totals.gross,
            }
        return shown

    def _draft_totals(self) -> vat.Totals:
        lines = self.context["lines"]
        return vat.compute_totals(
            (line.vat_category, line.vat_rate, line.net_amount) for line in lines
        )

    @extend_schema_field(VatGroupSerializer(many=True))
    def get_vat_breakdown(self, invoice: Invoice) -> list[dict[str, Any]]:
        if invoice.is_draft:
            return [group.as_json() for group in self._draft_totals().breakdown]
        return [dict(group) for group in invoice.vat_breakdown]


class LineInputSerializer(StrictSerializer):
    """A line to add: ``billing.services.add_invoice_line``'s fields."""

    description = serializers.CharField(max_length=500, trim_whitespace=False)
    quantity = _Decimal()
    unit_price = _Decimal()
    vat_category = serializers.CharField(max_length=2, required=False)
    vat_rate = _Decimal(required=False)
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True)


class InvoiceCreateSerializer(StrictSerializer):
    """A DRAFT to create (``billing.services.create_draft_invoice``)."""

    customer = serializers.IntegerField(min_value=1)
    currency = CurrencyField(required=False)
    payment_terms_days = serializers.IntegerField(required=False, min_value=0, max_value=365)
    due_date = serializers.DateField(required=False)
    notes = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, trim_whitespace=False
    )
    lines = LineInputSerializer(many=True, required=False, max_length=500)


class FinalizeSerializer(StrictSerializer):
    """Finalizing takes no field (an empty object, or no body)."""


class VoidSerializer(StrictSerializer):
    """Why the invoice is voided (kept in its audit event)."""

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class CreditLineSerializer(StrictSerializer):
    """Credit ``quantity`` of invoice line ``line`` (all that is left of it when omitted)."""

    line = serializers.IntegerField(min_value=1)
    quantity = _Decimal(required=False)


class CreditNoteCreateSerializer(StrictSerializer):
    """A credit note on an OPEN invoice: of ``amount`` (VAT included, minor units, with its
    ``currency``), of some ``lines``, or, with neither, of all that is left."""

    amount = MinorUnitsField(required=False)
    currency = CurrencyField(required=False)
    lines = CreditLineSerializer(many=True, required=False, min_length=1, max_length=500)
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, trim_whitespace=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "amount" in attrs and "lines" in attrs:
            raise serializers.ValidationError(
                {"lines": [_("give either an amount or lines, not both")]}
            )
        if ("amount" in attrs) != ("currency" in attrs):
            missing = "currency" if "amount" in attrs else "amount"
            raise serializers.ValidationError(
                {missing: [_("an amount is given with its currency")]}
            )
        return attrs


# --- documents ---------------------------------------------------------------------------


class Base64Field(serializers.CharField):
    """Bytes sent as standard base64 in a JSON string (the API takes JSON only)."""

    def to_internal_value(self, data: Any) -> bytes:
        text = super().to_internal_value(data)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise serializers.ValidationError(_("not base64"), code="invalid") from None


class VerifyUploadSerializer(StrictSerializer):
    """A PDF to verify, base64 in ``pdf`` (at most ``API_MAX_BODY_BYTES`` with its JSON)."""

    pdf = Base64Field(trim_whitespace=True, help_text="The PDF file, base64 (RFC 4648).")


class VerificationSerializer(serializers.Serializer):
    """Whether a PDF is one of ours: signed by our certificate, untampered, which invoice
    (named only when the caller may see it)."""

    outcome = serializers.ChoiceField(
        choices=[
            "genuine",
            "damaged",
            "unsigned",
            "foreign_signature",
            "modified",
            "unknown_document",
        ]
    )
    genuine = serializers.BooleanField()
    signed = serializers.BooleanField()
    signed_by_us = serializers.BooleanField()
    intact = serializers.BooleanField()
    sha256 = serializers.CharField()
    invoice = serializers.IntegerField(allow_null=True)
    number = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(allow_null=True)
    sentences = serializers.ListField(child=serializers.CharField())
