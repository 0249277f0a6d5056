"""An invoice's lines in the admin: editable on a draft (sized to fit 1,366 pixels, the VAT
rate one of the configured ones), read-only and plainly written once it is finalized."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from billing.admin.base import format_money
from billing.exceptions import BillingError
from billing.models import Invoice, InvoiceLine
from billing.money import format_decimal
from billing.validators import configured_vat_rates
from billing.vat import check_quantity, check_vat, normalize_rate


def is_frozen(invoice: Invoice | None) -> bool:
    return invoice is not None and invoice.pk is not None and not invoice.is_draft


_LINE_FIELDS = ("position", "description", "quantity", "unit", "unit_price", "vat_category")
LINE_EDITABLE = (*_LINE_FIELDS, "vat_rate")


class InvoiceLineForm(forms.ModelForm):
    """Checks a line as the services will (positive quantity, a configured VAT rate),
    so the error lands on the field instead of after the save."""

    class Meta:
        model = InvoiceLine
        fields = LINE_EDITABLE
        # Sized to fit the page at 1,366 pixels (staff/invoice.css sets the widths).
        widgets = {
            "position": forms.NumberInput(attrs={"class": "line-position"}),
            "description": forms.TextInput(attrs={"class": "line-description"}),
            "quantity": forms.NumberInput(attrs={"class": "line-number", "step": "any"}),
            "unit": forms.TextInput(attrs={"class": "line-unit"}),
            "unit_price": forms.NumberInput(attrs={"class": "line-number", "step": "any"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The configured rates only (BILLING_VAT_RATES): an unknown rate cannot be picked,
        # and one posted anyway is refused on this field.
        rates = sorted(configured_vat_rates(), reverse=True)
        self.fields["vat_rate"] = _RateField(
            label=InvoiceLine._meta.get_field("vat_rate").verbose_name.capitalize(),
            choices=[(str(rate), f"{format_decimal(rate)} %") for rate in rates],
            coerce=Decimal,
            initial=str(rates[0]) if rates else None,
        )
        if self.instance.pk is not None:
            self.initial["vat_rate"] = str(self.instance.vat_rate.normalize() or 0)
            self.initial["quantity"] = self.instance.quantity.normalize()
            self.initial["unit_price"] = _plain(self.instance.unit_price)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("DELETE"):
            return cleaned
        checks: list[tuple[str, Callable[[], object]]] = [
            ("quantity", lambda: check_quantity(cleaned.get("quantity"))),
            (
                "vat_rate",
                lambda: check_vat(str(cleaned.get("vat_category", "")), cleaned.get("vat_rate")),
            ),
        ]
        for field, check in checks:
            if field in self.errors or cleaned.get(field) is None:
                continue
            try:
                check()
            except BillingError as exc:
                target = exc.field if exc.field in self.fields else None
                self.add_error(target, exc.message)
        return cleaned


class _RateField(forms.TypedChoiceField):
    """A VAT rate among the configured ones; "25.00" is the choice "25"."""

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        try:
            return str(normalize_rate(text)) if text else text
        except BillingError:
            return text


def _plain(value: Decimal) -> Decimal:
    """A stored price without its trailing zeros beyond two decimals (1250.0000 -> 1250.00)."""
    return (
        value.quantize(Decimal("0.01"))
        if value == value.quantize(Decimal("0.01"))
        else value.normalize()
    )


class InvoiceLineInline(admin.TabularInline):
    """Lines: editable on a draft, never added, changed or removed once finalized."""

    model = InvoiceLine
    form = InvoiceLineForm
    fields = (*LINE_EDITABLE, "net")
    readonly_fields = ("net",)
    classes = ("invoice-lines",)
    extra = 1
    ordering = ("position", "pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet[InvoiceLine]:
        # The net column formats money in the invoice's currency: join it once.
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Net")
    def net(self, line: InvoiceLine) -> str:
        if line.pk is None:
            return "—"
        return format_money(line.net_amount, line.invoice.currency)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 0 if is_frozen(obj) else 1

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if is_frozen(obj):
            return _FROZEN_LINE_FIELDS
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if is_frozen(obj):
            return _FROZEN_LINE_FIELDS
        return ("net",)

    @admin.display(description=_("quantity"))
    def quantity_display(self, line: InvoiceLine) -> str:
        return format_decimal(line.quantity, translation.get_language() or "en")

    @admin.display(description=_("unit price"))
    def unit_price_display(self, line: InvoiceLine) -> str:
        return format_decimal(line.unit_price, translation.get_language() or "en", decimals=2)

    @admin.display(description=_("VAT"))
    def vat_display(self, line: InvoiceLine) -> str:
        return f"{line.get_vat_category_display()} {format_decimal(line.vat_rate.normalize())} %"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_frozen(obj) and super().has_delete_permission(request, obj)


_FROZEN_LINE_FIELDS = (
    "position",
    "description",
    "quantity_display",
    "unit",
    "unit_price_display",
    "vat_display",
    "net",
)
