"""Invoices, credit notes, their lines and the numbering series in the admin.

Drafts are edited through ``billing.services``; a finalized invoice is read-only here
(and frozen by the database below); its corrections are credit notes, issued by an
admin action. Its signed PDF and deliveries: ``billing.admin.invoice_background``.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _

from audit.admin import ReadOnlyAdmin
from billing import services
from billing.admin.base import ServiceAdmin, adopt, changed_values, format_money, known_values
from billing.admin.customers import currency_choices
from billing.admin.invoice_actions import InvoiceActionsAdmin
from billing.admin.invoice_background import InvoiceBackgroundWorkAdmin, InvoiceDocumentStateMixin
from billing.admin.invoice_bulk import InvoiceBulkActionsAdmin
from billing.admin.invoice_lines import LINE_EDITABLE, InvoiceLineInline, is_frozen
from billing.admin_format import format_date, status_label
from billing.models import Invoice, InvoiceLine, InvoiceSeries
from billing.vat import compute_totals


@admin.register(InvoiceSeries)
class InvoiceSeriesAdmin(ReadOnlyAdmin):
    """Numbering series are set up by migrations; the admin shows where each stands."""

    list_display = ("code", "kind", "name", "is_default", "next_number")
    list_filter = ("kind", "is_default")
    search_fields = ("code", "name")


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
    "credit_notes_links",
    "payments_links",
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

    currency = forms.ChoiceField(
        choices=lambda: [("", _("The customer's currency")), *currency_choices()],
        required=False,
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
class InvoiceAdmin(
    InvoiceActionsAdmin,
    InvoiceBulkActionsAdmin,
    InvoiceBackgroundWorkAdmin,
    InvoiceDocumentStateMixin,
    ServiceAdmin,
):
    """Invoices and credit notes. Drafts are edited through the services; everything
    that left DRAFT is read-only, and moves on only through the admin actions. A
    finalized one shows how its signed PDF and deliveries stand
    (``billing.admin.invoice_background``)."""

    form = InvoiceForm
    inlines = (InvoiceLineInline,)
    # Fits 1,366 pixels: the kind shows in the number ("K-…" credits), the OCR is searchable.
    # (The issue date is the list's date hierarchy above it.)
    list_display = (
        "number_or_draft",
        "customer",
        "due",
        "status",
        "gross_display",
        "due_display",
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

    class Media:
        css = {"all": ("staff/invoice.css",)}
        js = ("staff/invoice_totals.js",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        # A draft's totals are computed from its lines: those of the page's drafts come in
        # one more query, whatever the number of invoices.
        drafts_lines = Prefetch(
            "lines",
            queryset=InvoiceLine.objects.filter(invoice__status=Invoice.Status.DRAFT),
            to_attr="draft_lines",
        )
        return (
            super()
            .get_queryset(request)
            .select_related("customer", "series", "credited_invoice")
            .prefetch_related(drafts_lines)
        )

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """A draft's form posted after the invoice was finalized (another tab, another clerk)
        is refused with a message naming what changed; nothing is saved."""
        if request.method == "POST" and object_id is not None:
            invoice = self.get_object(request, object_id)
            if is_frozen(invoice):
                assert invoice is not None
                self.message_user(
                    request,
                    gettext_now(
                        "Nothing was saved: %(invoice)s was finalized since this page was"
                        " opened, and its lines and header can no longer change (status:"
                        " %(status)s). Corrections are credit notes."
                    )
                    % {"invoice": invoice, "status": invoice.get_status_display()},
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.get_full_path())
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        invoice = obj if isinstance(obj, Invoice) and obj.pk is not None else None
        may_change = request.user.has_perm("billing.change_invoice")
        context["invoice_actions"] = {
            "finalize": bool(invoice and invoice.is_draft and may_change),
            "preview": bool(invoice and invoice.is_draft),
            "void": bool(
                invoice
                and may_change
                and not invoice.is_credit_note
                and invoice.status in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)
                and not invoice.amount_paid
                and not invoice.amount_credited
            ),
            "credit": bool(
                invoice
                and may_change
                and not invoice.is_credit_note
                and invoice.status in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)
                and invoice.amount_due > 0
            ),
            "pdf": bool(invoice and not invoice.is_draft and _may_download(request.user)),
        }
        return super().render_change_form(request, context, add, change, form_url, obj)

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
        if is_frozen(obj):
            return (*computed, *_DRAFT_FIELDS)
        return computed

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not is_frozen(obj) and super().has_delete_permission(request, obj)

    # --- columns and read-only fields -------------------------------------------------

    @admin.display(description=_("due"), ordering="due_date")
    def due(self, invoice: Invoice) -> str:
        return format_date(invoice.due_date)

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

    @admin.display(description=_("Credit notes"))
    def credit_notes_links(self, invoice: Invoice) -> str:
        if invoice.is_credit_note or invoice.pk is None:
            return "—"
        notes = invoice.credit_notes.exclude(status=Invoice.Status.DRAFT).order_by("pk")
        return (
            format_html_join(
                ", ",
                '<a href="{}">{}</a> ({})',
                (
                    (
                        reverse("admin:billing_invoice_change", args=[note.pk]),
                        note.display_number,
                        format_money(note.gross_total, note.currency),
                    )
                    for note in notes
                ),
            )
            or "—"
        )

    @admin.display(description=_("Payments"))
    def payments_links(self, invoice: Invoice) -> str:
        # Billing never imports payments: the ORM relation and the admin's URL name suffice.
        if invoice.pk is None:
            return "—"
        payments = invoice.payments
        statuses = payments.model.Status
        rows = payments.order_by("pk").values_list("pk", "amount", "status")
        return (
            format_html_join(
                ", ",
                '<a href="{}">#{}</a> {} ({})',
                (
                    (
                        reverse("admin:payments_payment_change", args=[pk]),
                        pk,
                        format_money(amount, invoice.currency),
                        status_label(statuses, status),
                    )
                    for pk, amount, status in rows
                ),
            )
            or "—"
        )

    @admin.display(description=_("Net"))
    def net_display(self, invoice: Invoice) -> str:
        return format_money(_totals(invoice)[0], invoice.currency)

    @admin.display(description=_("VAT"))
    def vat_display(self, invoice: Invoice) -> str:
        return format_money(_totals(invoice)[1], invoice.currency)

    @admin.display(description=_("Total"), ordering="gross_total")
    def gross_display(self, invoice: Invoice) -> str:
        return format_money(_totals(invoice)[2], invoice.currency)

    @admin.display(description="Paid")
    def paid_display(self, invoice: Invoice) -> str:
        return format_money(invoice.amount_paid, invoice.currency)

    @admin.display(description="Credited")
    def credited_display(self, invoice: Invoice) -> str:
        return format_money(invoice.amount_credited, invoice.currency)

    @admin.display(description="Amount due")
    def due_display(self, invoice: Invoice) -> str:
        return format_money(invoice.amount_due, invoice.currency)

    @admin.display(description=_("VAT breakdown"))
    def vat_breakdown_display(self, invoice: Invoice) -> str:
        groups = invoice.vat_breakdown or []
        if invoice.is_draft and invoice.pk is not None:
            groups = [group.as_json() for group in _draft_totals(invoice).breakdown]
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
            changes = {n: getattr(line, n) for n in line_form.changed_data if n in LINE_EDITABLE}
            if changes:
                services.update_invoice_line(line, by=request.user, **changes)
                formset.changed_objects.append((line, sorted(changes)))
        for line_form in formset.extra_forms:
            if line_form in deleted or not line_form.has_changed():
                continue
            values = {name: getattr(line_form.instance, name) for name in LINE_EDITABLE}
            saved = services.add_invoice_line(invoice, by=request.user, **values)
            adopt(line_form.instance, saved)
            formset.new_objects.append(line_form.instance)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.delete_draft_invoice(obj, by=request.user)


def _may_download(user: Any) -> bool:
    from billing.documents.selectors import can_download_any

    return can_download_any(user)


def _draft_totals(invoice: Invoice) -> Any:
    lines = getattr(invoice, "draft_lines", None)
    if lines is None:
        lines = list(invoice.lines.all())
    return compute_totals((line.vat_category, line.vat_rate, line.net_amount) for line in lines)


def _totals(invoice: Invoice) -> tuple[int, int, int]:
    """(net, VAT, total): frozen for a finalized invoice, computed from a draft's lines as
    finalization will compute them."""
    if invoice.is_draft and invoice.pk is not None:
        totals = _draft_totals(invoice)
        return totals.net, totals.vat, totals.gross
    return invoice.net_total, invoice.vat_total, invoice.gross_total


def _snapshot(values: dict[str, Any]) -> str:
    if not values:
        return "— (frozen at finalization)"
    return format_html("<pre>{}</pre>", json.dumps(values, indent=2, ensure_ascii=False))
