"""The staff admin for billing: lists, filters and search over every billing model.

The admin never writes a row itself. Adding and changing go through
``billing.services`` (``save_model``, ``save_formset``, ``delete_model``), so an
admin edit gets the same checks, locks and audit events as any other path. A
finalized invoice is read-only here (and frozen by the database below); its
corrections are credit notes, issued by an admin action.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join

from billing import services
from billing.admin_retry import InvoiceBackgroundWorkAdmin, InvoiceDocumentStateMixin
from billing.exceptions import BillingError
from billing.models import (
    CompanyProfile,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceSeries,
    PortalAccount,
)
from billing.money import Money
from billing.vat import check_quantity, check_vat


def format_money(amount: int, currency: str) -> str:
    """An amount for staff eyes: "1,250.00 SEK" in English, "1 250,00 SEK" in Swedish."""
    return Money(amount, currency).format(translation.get_language() or "en")


def _adopt(target: Any, saved: Any) -> None:
    """Copy a service's saved row onto the admin's instance, which the admin keeps using."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def _changes(form: forms.ModelForm[Any], allowed: Sequence[str]) -> dict[str, Any]:
    return {
        name: form.cleaned_data[name]
        for name in form.changed_data
        if name in allowed and name in form.cleaned_data
    }


class ServiceAdmin(admin.ModelAdmin):
    """Base for billing admins: a service's refusal becomes a message, and nothing changes.

    The admin wraps each add/change in one transaction; a ``BillingError`` raised
    by a service inside it rolls the whole request back, and the staff member is
    sent back to the form with the rule that was broken.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BillingError as exc:
            self.message_user(request, f"Nothing was saved. {exc}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except BillingError as exc:
            self.message_user(request, f"Nothing was deleted. {exc}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The built-in bulk delete is a queryset delete that skips the services.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def _known(values: dict[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name in allowed}


# --- the seller ---------------------------------------------------------------------


@admin.register(CompanyProfile)
class CompanyProfileAdmin(ServiceAdmin):
    """One seller per installation: it can be added once, changed, never deleted."""

    list_display = ("legal_name", "organisation_number", "vat_number", "bankgiro", "iban")
    readonly_fields = ("updated_at",)
    fieldsets = (
        (None, {"fields": ("legal_name", "organisation_number", "vat_number", "logo")}),
        (
            "Address and contact",
            {
                "fields": (
                    "address_line1",
                    "address_line2",
                    "postal_code",
                    "city",
                    "country",
                    "email",
                    "phone",
                )
            },
        ),
        (
            "Payment and tax",
            {
                "fields": (
                    "bankgiro",
                    "iban",
                    "bic",
                    "f_skatt_text",
                    "default_payment_terms_days",
                    "updated_at",
                )
            },
        ),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not CompanyProfile.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        profile = CompanyProfile.objects.only("pk").first()
        if profile is not None and self.has_view_or_change_permission(request, profile):
            return HttpResponseRedirect(
                reverse("admin:billing_companyprofile_change", args=[profile.pk])
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = (
            _changes(form, services.COMPANY_FIELDS)
            if change
            else _known(form.cleaned_data, services.COMPANY_FIELDS)
        )
        if fields.get("logo") is False:  # the form's "clear" checkbox
            fields["logo"] = ""
        saved = services.update_company_profile(by=request.user, **fields)
        _adopt(obj, saved)


# --- customers and their portal users ------------------------------------------------


@admin.register(Customer)
class CustomerAdmin(ServiceAdmin):
    list_display = ("name", "kind", "identity_number", "vat_id", "email", "country", "currency")
    list_filter = ("kind", "country", "currency", "language")
    search_fields = ("name", "identity_number", "email", "vat_id")
    readonly_fields = ("created_at", "updated_at")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("name", "kind", "identity_number", "vat_id", "email")}),
        (
            "Billing address",
            {"fields": ("address_line1", "address_line2", "postal_code", "city", "country")},
        ),
        (
            "Preferences",
            {"fields": ("language", "currency", "payment_terms_days", "created_at", "updated_at")},
        ),
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Customers carry invoices kept for the bookkeeping period; erasure is a
        # privacy service (pseudonymization), not a delete.
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            saved = services.update_customer(
                obj, by=request.user, **_changes(form, services.CUSTOMER_FIELDS)
            )
        else:
            saved = services.create_customer(
                by=request.user, **_known(form.cleaned_data, services.CUSTOMER_FIELDS)
            )
        _adopt(obj, saved)


@admin.register(PortalAccount)
class PortalAccountAdmin(ServiceAdmin):
    """Which user sees which customer's invoices in the portal: linked, never edited here."""

    list_display = ("user", "customer", "created_at")
    list_select_related = ("user", "customer")
    search_fields = ("user__username", "user__email", "customer__name")
    autocomplete_fields = ("customer",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None:
            return ("user", "customer", "created_at")
        return ("created_at",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = services.link_portal_account(
            user=form.cleaned_data["user"], customer=form.cleaned_data["customer"], by=request.user
        )
        _adopt(obj, saved)


# --- numbering series ----------------------------------------------------------------


@admin.register(InvoiceSeries)
class InvoiceSeriesAdmin(ServiceAdmin):
    """Numbering series are set up by migrations; the admin shows where each stands."""

    list_display = ("code", "kind", "name", "is_default", "next_number")
    list_filter = ("kind", "is_default")
    search_fields = ("code", "name")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- invoices and their lines ---------------------------------------------------------


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
    finalized one shows how its signed PDF and deliveries stand (billing.admin_retry)."""

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
            changes = _changes(form, _DRAFT_FIELDS)
            # Emptied currency or terms keep what the draft has.
            changes = {
                k: v
                for k, v in changes.items()
                if not (k in ("currency", "payment_terms_days") and v in ("", None))
            }
            saved = services.update_draft_invoice(obj, by=request.user, **changes)
        else:
            values = _known(form.cleaned_data, _DRAFT_FIELDS)
            values["currency"] = values.get("currency") or None
            saved = services.create_draft_invoice(by=request.user, **values)
        _adopt(obj, saved)

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
            _adopt(line_form.instance, saved)
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
