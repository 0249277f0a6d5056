"""Bank files in the admin: the camt.054 upload and the review list of bank lines (apply a
line to an invoice or dismiss it). Read-only lists; every change is a form that calls one
service (``payments.reconciliation.services``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from audit.admin import ReadOnlyAdmin
from billing.admin_format import format_money, format_time
from billing.models import Invoice
from payments.exceptions import PaymentsError
from payments.models import BankFile, BankLine
from payments.reconciliation.review import apply_bank_line, dismiss_bank_line
from payments.reconciliation.services import import_bank_file


class UploadForm(forms.Form):
    file = forms.FileField(label="camt.054 file")


@admin.register(BankFile)
class BankFileAdmin(ReadOnlyAdmin):
    # Fits 1,366 pixels: the message id, lines for information and completion time are
    # on the file's page.
    list_display = [
        "filename",
        "imported",
        "lines_total",
        "lines_matched",
        "lines_review",
        "lines_reversed",
    ]

    @admin.display(description=gettext_lazy("imported"), ordering="imported_at")
    def imported(self, obj: BankFile) -> str:
        return format_time(obj.imported_at)

    change_list_template = "admin/payments/bankfile/change_list.html"

    def get_urls(self) -> list[Any]:
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="payments_bankfile_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Import a camt.054 file through the same service as the command."""
        if not request.user.has_perm("payments.add_bankfile"):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = import_bank_file(
                    upload.read(), filename=upload.name, by=request.user, request=request
                )
            except PaymentsError as exc:
                form.add_error("file", f"Refused, nothing recorded: {exc}")
            else:
                if report.already_imported:
                    messages.warning(request, f"{upload.name} was already imported.")
                else:
                    messages.success(
                        request,
                        f"{upload.name}: {report.matched} matched, {report.reversed} reversed,"
                        f" {report.review} to review, {report.info} for information,"
                        f" {report.skipped} already imported.",
                    )
                    for notice in report.notices[:20]:
                        messages.warning(request, notice)
                return HttpResponseRedirect(reverse("admin:payments_bankline_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a camt.054 bank file",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/upload.html", context)


class ResolveForm(forms.Form):
    invoice_number = forms.CharField(
        required=False, help_text="Apply the amount to this invoice (number or OCR reference)."
    )
    dismiss_reason = forms.CharField(
        required=False, help_text="Or dismiss the line, saying why (e.g. sent back to the payer)."
    )


@admin.register(BankLine)
class BankLineAdmin(ReadOnlyAdmin):
    # Fits 1,366 pixels: the line's position, entry status and detail are on its page.
    list_display = [
        "line_label",
        "kind",
        "amount_display",
        "reference",
        "debtor_name",
        "status",
        "reason",
        "resolve_link",
    ]

    class Media:
        css = {"all": ("staff/lists.css",)}

    @admin.display(description=gettext_lazy("line"), ordering="pk")
    def line_label(self, obj: BankLine) -> str:
        return f"{obj.bank_file.filename} #{obj.position}"

    list_filter = ["status", "kind", "reason"]
    search_fields = ["reference", "debtor_name", "line_key"]
    list_select_related = ["bank_file"]

    # The detail page: the amount in currency units, never the stored minor units.
    exclude = ("amount",)
    readonly_fields = ("amount_display",)

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_display(self, obj: BankLine) -> str:
        return format_money(obj.amount, obj.currency) if obj.currency else "—"

    @admin.display(description="")
    def resolve_link(self, obj: BankLine) -> str:
        if obj.status != BankLine.Status.REVIEW:
            return ""
        return format_html(
            '<a href="{}">Resolve…</a>', reverse("admin:payments_bankline_resolve", args=[obj.pk])
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="payments_bankline_resolve",
            ),
            *super().get_urls(),
        ]

    def resolve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Apply a reviewed line to an invoice, or dismiss it with a reason."""
        if not request.user.has_perm("payments.change_bankline"):
            raise PermissionDenied
        line = get_object_or_404(BankLine, pk=pk)
        form = ResolveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            number = form.cleaned_data["invoice_number"].strip()
            reason = form.cleaned_data["dismiss_reason"].strip()
            try:
                if number:
                    invoice = Invoice.objects.filter(display_number=number).first() or (
                        Invoice.objects.filter(ocr_reference=number).first()
                    )
                    if invoice is None:
                        raise PaymentsError("no invoice has this number", field="invoice_number")
                    apply_bank_line(line, invoice=invoice, by=request.user, request=request)
                else:
                    dismiss_bank_line(line, reason=reason, by=request.user, request=request)
            except PaymentsError as exc:
                target = "invoice_number" if exc.field in ("invoice", "currency") else None
                if exc.field in form.fields:
                    target = exc.field
                if exc.field == "reason":
                    target = "dismiss_reason"
                form.add_error(target, exc.message)
            else:
                messages.success(request, f"Line {line.position} resolved.")
                return HttpResponseRedirect(reverse("admin:payments_bankline_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Resolve bank line {line}",
            "opts": self.model._meta,
            "line": line,
            "amount": format_money(line.amount, line.currency) if line.currency else "—",
            "form": form,
        }
        return TemplateResponse(request, "admin/payments/resolve_line.html", context)
