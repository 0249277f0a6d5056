"""Staff admin for signed invoice documents: read-only, with a download link for those
permitted to fetch the PDF (the download itself is audited by the download view)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.admin import ReadOnlyAdmin
from billing.admin_format import format_date, format_money
from billing.documents import selectors
from billing.documents.models import InvoiceDocument, SigningCertificate


@admin.register(InvoiceDocument)
class InvoiceDocumentAdmin(ReadOnlyAdmin):
    # At 1,366 pixels: who, when, how much and the link first; the hash shortened (whole
    # on the document's page and in the export's manifest).
    list_display = (
        "invoice",
        "customer",
        "issue_date",
        "amount",
        "version",
        "signed_at",
        "hash_prefix",
    )
    list_filter = ("template_version",)
    search_fields = ("invoice__display_number", "invoice__customer__name", "sha256")
    list_select_related = ("invoice", "invoice__customer")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    fields = (
        "invoice",
        "version",
        "sha256",
        "signed_at",
        "signer_fingerprint",
        "size",
        "template_version",
        "reason",
        "created_by",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[InvoiceDocument]:
        # The PDF bytes and the certificate stay in the database until someone downloads.
        return super().get_queryset(request).defer("content", "signer_certificate")

    def _may_download(self, request: HttpRequest) -> bool:
        return selectors.can_download_any(request.user)

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = super().get_list_display(request)
        if not self._may_download(request):
            return shown
        return (*shown[:4], "download", *shown[4:])

    @admin.display(description=_("customer"), ordering="invoice__customer__name")
    def customer(self, document: InvoiceDocument) -> str:
        return document.invoice.customer.name

    @admin.display(description=_("issued"), ordering="invoice__issue_date")
    def issue_date(self, document: InvoiceDocument) -> str:
        return format_date(document.invoice.issue_date)

    @admin.display(description=_("amount"), ordering="invoice__gross_total")
    def amount(self, document: InvoiceDocument) -> str:
        return format_money(document.invoice.gross_total, document.invoice.currency)

    @admin.display(description=_("SHA-256"), ordering="sha256")
    def hash_prefix(self, document: InvoiceDocument) -> str:
        return format_html('<code title="{}">{}…</code>', document.sha256, document.sha256[:12])

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        shown = super().get_fields(request, obj)
        return (*shown, "download") if self._may_download(request) else shown

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj)

    @admin.display(description="Signed at", ordering="created_at")
    def signed_at(self, document: InvoiceDocument) -> Any:
        return document.created_at

    @admin.display(description="PDF")
    def download(self, document: InvoiceDocument) -> str:
        url = reverse("documents:download_version", args=[document.invoice_id, document.version])
        return format_html('<a href="{}">Download {}</a>', url, document.filename)


@admin.register(SigningCertificate)
class SigningCertificateAdmin(ReadOnlyAdmin):
    """The certificates verification trusts: each one the company's documents were signed
    with, added when the first document signed with it is stored."""

    list_display = ("fingerprint", "first_used_at")
    fields = ("fingerprint", "first_used_at", "certificate")
    readonly_fields = fields
