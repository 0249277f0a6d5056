"""Staff admin for signed invoice documents: read-only, with a download link for those
permitted to fetch the PDF (the download itself is audited by the download view)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from audit.admin import ReadOnlyAdmin
from billing.documents import selectors
from billing.documents.models import InvoiceDocument, SigningCertificate


@admin.register(InvoiceDocument)
class InvoiceDocumentAdmin(ReadOnlyAdmin):
    list_display = (
        "invoice",
        "version",
        "sha256",
        "signed_at",
        "signer_fingerprint",
        "size",
    )
    list_filter = ("template_version",)
    search_fields = ("invoice__display_number", "sha256")
    list_select_related = ("invoice",)
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
        return (*shown, "download") if self._may_download(request) else shown

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
