"""The invoice's background work on its admin page: how its signed PDF and its deliveries
stand (with the rules a failed EN 16931 check broke, and the action that checks and signs
again), why one failed, and "Retry now" for the staff allowed to (a confirmation page,
then one service call: ``billing.documents.services.retry_invoice_document``,
``billing.delivery.services.retry_delivery``, each checking the permission again and
writing its audit event).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.delivery import selectors as delivery_selectors
from billing.delivery import services as delivery_services
from billing.delivery.models import Delivery
from billing.documents import selectors as document_selectors
from billing.documents import services as document_services
from billing.documents.exceptions import DocumentError, InvalidFacturX
from billing.exceptions import BillingError
from billing.models import Invoice


class InvoiceBackgroundWorkAdmin(admin.ModelAdmin):
    """Mixed into the invoice admin: the "Signed PDF and delivery" panel and its retries."""

    def background_work(self, request: HttpRequest, invoice: Invoice) -> dict[str, Any]:
        """What the change page's panel shows (``admin/billing/invoice/change_form.html``)."""
        now = timezone.now()
        documents = invoice.documents.order_by("-version").only("version", "created_at")
        deliveries = [
            {
                "delivery": delivery,
                "interrupted": delivery_selectors.sending_interrupted(delivery, now),
                "may_retry": delivery_selectors.may_retry(delivery, now)
                and request.user.has_perm(delivery_services.RETRY_PERMISSION),
            }
            for delivery in delivery_selectors.invoice_deliveries(invoice)
        ]
        job = document_selectors.document_job_state(invoice)
        return {
            "document": documents.first(),
            "document_job": job,
            "may_retry_document": job is not None
            and job.gave_up
            and request.user.has_perm(document_services.RETRY_PERMISSION),
            "deliveries": deliveries,
        }

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        invoice = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if invoice is not None and not invoice.is_draft and self.has_view_permission(request):
            extra["background"] = self.background_work(request, invoice)
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/retry-document/",
                wrap(self.retry_document_view),
                name="billing_invoice_retry_document",
            ),
            path(
                "<path:object_id>/deliveries/<int:delivery_id>/retry/",
                wrap(self.retry_delivery_view),
                name="billing_invoice_retry_delivery",
            ),
            *super().get_urls(),
        ]

    def _invoice_or_404(self, request: HttpRequest, object_id: str, permission: str) -> Invoice:
        invoice = self.get_object(request, object_id)
        if invoice is None or invoice.is_draft or not self.has_view_permission(request, invoice):
            raise Http404("No such invoice")
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return invoice

    def _back(self, invoice: Invoice) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:billing_invoice_change", args=[invoice.pk]))

    def _confirm(self, request: HttpRequest, invoice: Invoice, what: str, why: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Retry now: {what}",
            "invoice": invoice,
            "what": what,
            "why": why,
        }
        return TemplateResponse(request, "admin/billing/invoice/retry_confirm.html", context)

    def retry_document_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: confirm; POST: have the invoice's PDF signed (and delivered) again."""
        invoice = self._invoice_or_404(request, object_id, document_services.RETRY_PERMISSION)
        if request.method != "POST":
            job = document_selectors.document_job_state(invoice)
            why = job.error if job is not None else "no signed PDF yet"
            return self._confirm(request, invoice, "sign the PDF and deliver it", why)
        try:
            queued = document_services.retry_invoice_document(
                invoice, by=request.user, request=request
            )
        except BillingError as exc:
            self.message_user(request, f"Nothing was retried. {exc.message}", messages.ERROR)
        else:
            self.message_user(
                request,
                "The signed PDF is being made again."
                if queued
                else "Recorded; background jobs are off (DOCUMENTS_ON_FINALIZE=off).",
            )
        return self._back(invoice)

    def retry_delivery_view(
        self, request: HttpRequest, object_id: str, delivery_id: int
    ) -> HttpResponse:
        """GET: confirm; POST: send one of the invoice's failed deliveries again."""
        invoice = self._invoice_or_404(request, object_id, delivery_services.RETRY_PERMISSION)
        delivery = Delivery.objects.filter(pk=delivery_id, invoice=invoice).first()
        if delivery is None:
            raise Http404("No such delivery")
        if request.method != "POST":
            what = f"send the {delivery.get_kind_display().lower()} to {delivery.recipient}"
            return self._confirm(request, invoice, what, delivery.last_error or delivery.status)
        try:
            delivery_services.retry_delivery(delivery, by=request.user, request=request)
        except BillingError as exc:
            self.message_user(request, f"Nothing was retried. {exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"The {delivery.get_kind_display().lower()} is queued.")
        return self._back(invoice)


class InvoiceDocumentStateMixin(admin.ModelAdmin):
    """For the invoice admin: where the invoice's signed PDF stands (signed, waiting, or
    stopped by a failed EN 16931 check, with each rule), and the action that checks and
    signs it again once the cause is fixed
    (``billing.delivery.services.issue_invoice_document``)."""

    @admin.display(description="Signed PDF")
    def signed_pdf_display(self, invoice: Invoice) -> str:
        if invoice.is_draft:
            return "— (a draft has no PDF)"
        failure = document_selectors.open_check_failure(invoice)
        if failure is not None:
            rules = format_html_join(
                "",
                "<li><code>{}</code> {}</li>",
                ((rule.get("rule", "?"), rule.get("text", "")) for rule in failure.rules),
            )
            return format_html(
                '<div class="check-failure"><strong>Not signed and not sent:</strong> its'
                " Factur-X XML breaks EN 16931 (attempt {}, last {} UTC)."
                "<ul>{}</ul>Once the cause is fixed, select the invoice in the list and run"
                " “Check and sign the PDF again”; the signing job also retries on its own."
                "</div>",
                failure.attempts,
                f"{failure.last_failed_at:%Y-%m-%d %H:%M}",
                rules,
            )
        document = document_selectors.latest_document(invoice)
        if document is None:
            return "Not signed yet (its signing job is waiting)."
        return format_html(
            "Signed: version {}, {} UTC, SHA-256 <code>{}</code>",
            document.version,
            f"{document.created_at:%Y-%m-%d %H:%M}",
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
                document = delivery_services.issue_invoice_document(invoice, by=request.user)
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
