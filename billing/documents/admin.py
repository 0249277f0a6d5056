"""Staff admin for signed invoice documents: read-only, with a download link for those
permitted to fetch the PDF (the download itself is audited by the download view)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.admin import ReadOnlyAdmin
from billing.admin_format import format_date, format_money, format_time
from billing.documents import selectors, services
from billing.documents.exceptions import DocumentError, InvalidFacturX
from billing.documents.models import InvoiceDocument, SigningCertificate
from billing.models import Invoice


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


class InvoiceDocumentStateMixin(admin.ModelAdmin):
    """For the invoice admin: where the invoice's signed PDF stands (signed, waiting, or
    stopped by a failed EN 16931 check, with each rule), and the action that checks and
    signs it again once the cause is fixed (``services.issue_invoice_document``)."""

    @admin.display(description="Signed PDF")
    def signed_pdf_display(self, invoice: Invoice) -> str:
        if invoice.is_draft:
            return "— (a draft has no PDF)"
        failure = selectors.open_check_failure(invoice)
        if failure is not None:
            rules = format_html_join(
                "",
                "<li><code>{}</code> {}</li>",
                ((rule.get("rule", "?"), rule.get("text", "")) for rule in failure.rules),
            )
            return format_html(
                '<div class="check-failure"><strong>Not signed and not sent:</strong> its'
                " Factur-X XML breaks EN 16931 (attempt {}, last {})."
                "<ul>{}</ul>Once the cause is fixed, select the invoice in the list and run"
                " “Check and sign the PDF again”; the signing job also retries on its own."
                "</div>",
                failure.attempts,
                format_time(failure.last_failed_at),
                rules,
            )
        document = selectors.latest_document(invoice)
        if document is None:
            return "Not signed yet (its signing job is waiting)."
        return format_html(
            "Signed: version {}, {}, SHA-256 <code>{}</code>",
            document.version,
            format_time(document.created_at),
            document.sha256,
        )

    @admin.action(
        description="Check and sign the PDF again (after a failed EN 16931 check)",
        permissions=["change"],
    )
    def check_and_sign_document(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        for invoice in queryset.select_related("credited_invoice", "customer").order_by("pk"):
            if invoice.is_draft:
                self.message_user(request, f"{invoice}: a draft has no PDF", messages.ERROR)
                continue
            try:
                document = services.issue_invoice_document(invoice, by=request.user)
            except InvalidFacturX as exc:
                rules = ", ".join(dict.fromkeys(failure.rule for failure in exc.failures))
                self.message_user(
                    request,
                    f"{invoice}: still not signed; its XML breaks {rules} (see the invoice)",
                    messages.ERROR,
                )
            except DocumentError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{invoice}: signed (version {document.version}) and queued for delivery",
                    messages.SUCCESS,
                )
