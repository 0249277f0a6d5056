"""Invoices, credit notes, their lines and the numbering series in the admin.

Drafts are edited through ``billing.services``; a finalized invoice is read-only here
(and frozen by the database below); its corrections are credit notes, issued by an
admin action. Its signed PDF and deliveries: ``billing.admin.invoice_background``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.admin import ReadOnlyAdmin
from billing import services
from billing.admin.base import ServiceAdmin, adopt, changed_values, format_money, known_values
from billing.admin.invoice_background import InvoiceBackgroundWorkAdmin, InvoiceDocumentStateMixin
from billing.exceptions import BillingError
from billing.models import Invoice, InvoiceLine, InvoiceSeries
from billing.vat import check_quantity, check_vat


@admin.register(InvoiceSeries)
class InvoiceSeriesAdmin(ReadOnlyAdmin):
    """Numbering series are set up by migrations; the admin shows where each stands."""

    list_display = ("code", "kind", "name", "is_default", "next_number")
    list_filter = ("kind", "is_default")
    search_fields = ("code", "name")


def _is_frozen(invoice: Invoice | None) -> bool:
    return invoice is not None and invoice.pk is not None and not invoice.is_draft


_LINE_FIELDS = ("position", "description", "quantity", "unit", "unit_price", "vat_category")
_LINE_EDITABLE = (*_LINE_FIELDS, "vat_rate")


class InvoiceLineForm(forms.ModelForm):
    """Checks a line as the services will (positive quantity, a configured VAT rate),
    so the error lands on the field instead of after the save."""

    class Meta:
        model = InvoiceLine
        fields = _LINE_EDITABLE

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


class InvoiceLineInline(admin.TabularInline):
    """Lines: editable on a draft, never added, changed or removed once finalized."""

    model = InvoiceLine
    form = InvoiceLineForm
    fields = (*_LINE_EDITABLE, "net")
    readonly_fields = ("net",)
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
        return 0 if _is_frozen(obj) else 1

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if _is_frozen(obj):
            return (*_LINE_EDITABLE, "net")
        return ("net",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_delete_permission(request, obj)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() == "yes":
            return queryset.filter(
                kind=Invoice.Kind.INVOICE,
                status=Invoice.Status.OPEN,
                due_date__lt=timezone.localdate(),
            )
        return queryset


_DRAFT_FIELDS = ("customer", "currency", "payment_terms_days", "due_date", "notes")
_SUMMARY_FIELDS = (
    "number_or_draft",
    "kind",
    "status",
    "credited_invoice_link",
    "series",
    "issue_date",
    "finalized_at",
    "ocr_reference",
)
_TOTAL_FIELDS = (
    "net_display",
    "vat_display",
    "gross_display",
    "paid_display",
    "credited_display",
    "due_display",
    "vat_breakdown_display",
)
_SNAPSHOT_FIELDS = ("seller_snapshot_display", "buyer_snapshot_display")


class InvoiceForm(forms.ModelForm):
    """A draft's header. Currency and terms left empty follow the customer's."""

    currency = forms.CharField(
        max_length=3, required=False, help_text="ISO 4217. Empty: the customer's currency."
    )
    payment_terms_days = forms.IntegerField(
        min_value=0,
        max_value=365,
        required=False,
        help_text="Empty: the customer's terms, else the company's default.",
    )

    class Meta:
        model = Invoice
        fields = _DRAFT_FIELDS

    def clean_currency(self) -> str:
        return str(self.cleaned_data.get("currency") or "").strip().upper()

    def clean_due_date(self) -> Any:
        due_date = self.cleaned_data.get("due_date")
        if due_date is not None and due_date < timezone.localdate():
            raise forms.ValidationError("The due date cannot be in the past.")
        return due_date


@admin.register(Invoice)
class InvoiceAdmin(InvoiceBackgroundWorkAdmin, InvoiceDocumentStateMixin, ServiceAdmin):
    """Invoices and credit notes. Drafts are edited through the services; everything
    that left DRAFT is read-only, and moves on only through the admin actions. A
    finalized one shows how its signed PDF and deliveries stand
    (``billing.admin.invoice_background``)."""

    form = InvoiceForm
    inlines = (InvoiceLineInline,)
    list_display = (
        "number_or_draft",
        "kind",
        "customer",
        "issue_date",
        "due_date",
        "status",
        "gross_display",
        "due_display",
        "ocr_reference",
    )
    list_select_related = ("customer", "series")
    list_filter = ("status", "kind", OverdueFilter, "currency", "series", "issue_date")
    search_fields = (
        "display_number",
        "ocr_reference",
        "customer__name",
        "customer__identity_number",
        "customer__email",
    )
    date_hierarchy = "issue_date"
    autocomplete_fields = ("customer",)
    ordering = ("-created_at", "-pk")
    actions = (
        "finalize",
        "void",
        "mark_uncollectible",
        "issue_full_credit_note",
        "check_and_sign_document",
    )
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return (
            super().get_queryset(request).select_related("customer", "series", "credited_invoice")
        )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("currency", "")
        initial.setdefault("payment_terms_days", "")
        return initial

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ((None, {"fields": _DRAFT_FIELDS}),)
        return (
            (None, {"fields": (*_SUMMARY_FIELDS, *_DRAFT_FIELDS)}),
            ("Totals", {"fields": _TOTAL_FIELDS}),
            ("Document", {"fields": ("signed_pdf_display",)}),
            ("Frozen at finalization", {"fields": _SNAPSHOT_FIELDS, "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        computed = (*_SUMMARY_FIELDS, *_TOTAL_FIELDS, *_SNAPSHOT_FIELDS, "signed_pdf_display")
        if _is_frozen(obj):
            return (*computed, *_DRAFT_FIELDS)
        return computed

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _is_frozen(obj) and super().has_delete_permission(request, obj)

    # --- columns and read-only fields -------------------------------------------------

    @admin.display(description="Number", ordering="display_number")
    def number_or_draft(self, invoice: Invoice) -> str:
        return invoice.display_number or f"Draft #{invoice.pk}"

    @admin.display(description="Credits invoice")
    def credited_invoice_link(self, invoice: Invoice) -> str:
        credited = invoice.credited_invoice
        if credited is None:
            return "—"
        url = reverse("admin:billing_invoice_change", args=[credited.pk])
        return format_html('<a href="{}">{}</a>', url, credited.display_number or credited)

    @admin.display(description="Net")
    def net_display(self, invoice: Invoice) -> str:
        return format_money(invoice.net_total, invoice.currency)

    @admin.display(description="VAT")
    def vat_display(self, invoice: Invoice) -> str:
        return format_money(invoice.vat_total, invoice.currency)

    @admin.display(description="Total", ordering="gross_total")
    def gross_display(self, invoice: Invoice) -> str:
        return format_money(invoice.gross_total, invoice.currency)

    @admin.display(description="Paid")
    def paid_display(self, invoice: Invoice) -> str:
        return format_money(invoice.amount_paid, invoice.currency)

    @admin.display(description="Credited")
    def credited_display(self, invoice: Invoice) -> str:
        return format_money(invoice.amount_credited, invoice.currency)

    @admin.display(description="Amount due")
    def due_display(self, invoice: Invoice) -> str:
        return format_money(invoice.amount_due, invoice.currency)

    @admin.display(description="VAT breakdown")
    def vat_breakdown_display(self, invoice: Invoice) -> str:
        groups = invoice.vat_breakdown or []
        if not groups:
            return "—"
        return format_html_join(
            "",
            "<div>{} {}%: {} on {}</div>",
            (
                (
                    group["category"],
                    group["rate"],
                    format_money(int(group["vat_amount"]), invoice.currency),
                    format_money(int(group["taxable_amount"]), invoice.currency),
                )
                for group in groups
            ),
        )

    @admin.display(description="Seller")
    def seller_snapshot_display(self, invoice: Invoice) -> str:
        return _snapshot(invoice.seller_snapshot)

    @admin.display(description="Buyer")
    def buyer_snapshot_display(self, invoice: Invoice) -> str:
        return _snapshot(invoice.buyer_snapshot)

    # --- writes, all through the services -------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            changes = changed_values(form, _DRAFT_FIELDS)
            # Emptied currency or terms keep what the draft has.
            changes = {
                k: v
                for k, v in changes.items()
                if not (k in ("currency", "payment_terms_days") and v in ("", None))
            }
            saved = services.update_draft_invoice(obj, by=request.user, **changes)
        else:
            values = known_values(form.cleaned_data, _DRAFT_FIELDS)
            values["currency"] = values.get("currency") or None
            saved = services.create_draft_invoice(by=request.user, **values)
        adopt(obj, saved)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        invoice = form.instance
        deleted = formset.deleted_forms
        # The admin's history message reads these lists (a formset sets them when it saves).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for line_form in deleted:
            if line_form.instance.pk is not None:
                services.remove_invoice_line(line_form.instance, by=request.user)
                formset.deleted_objects.append(line_form.instance)
        for line_form in formset.initial_forms:
            if line_form in deleted or not line_form.has_changed():
                continue
            line = line_form.instance
            changes = {n: getattr(line, n) for n in line_form.changed_data if n in _LINE_EDITABLE}
            if changes:
                services.update_invoice_line(line, by=request.user, **changes)
                formset.changed_objects.append((line, sorted(changes)))
        for line_form in formset.extra_forms:
            if line_form in deleted or not line_form.has_changed():
                continue
            values = {name: getattr(line_form.instance, name) for name in _LINE_EDITABLE}
            saved = services.add_invoice_line(invoice, by=request.user, **values)
            adopt(line_form.instance, saved)
            formset.new_objects.append(line_form.instance)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.delete_draft_invoice(obj, by=request.user)

    # --- actions: one service call per invoice, each in its own transaction ----------

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Invoice],
        service: Callable[..., object],
        done: str,
    ) -> None:
        succeeded = 0
        for invoice in queryset.order_by("pk"):
            try:
                service(invoice, by=request.user)
            except BillingError as exc:
                self.message_user(request, f"{invoice}: {exc}", messages.ERROR)
            else:
                succeeded += 1
        if succeeded:
            noun = "invoice" if succeeded == 1 else "invoices"
            self.message_user(request, f"{succeeded} {noun} {done}.", messages.SUCCESS)

    @admin.action(
        description="Finalize selected drafts (number and freeze)", permissions=["change"]
    )
    def finalize(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._apply(request, queryset, services.finalize_invoice, "finalized")

    @admin.action(description="Void selected invoices", permissions=["change"])
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._apply(request, queryset, services.void_invoice, "voided")

    @admin.action(description="Mark selected invoices uncollectible", permissions=["change"])
    def mark_uncollectible(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._apply(request, queryset, services.mark_uncollectible, "marked uncollectible")

    @admin.action(
        description="Issue a credit note for all that is left of selected invoices",
        permissions=["change"],
    )
    def issue_full_credit_note(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._apply(request, queryset, services.issue_credit_note, "credited in full")


def _snapshot(values: dict[str, Any]) -> str:
    if not values:
        return "— (frozen at finalization)"
    return format_html("<pre>{}</pre>", json.dumps(values, indent=2, ensure_ascii=False))
