"""Document pages: download a signed PDF, export a period, verify an uploaded PDF.

Thin: a selector decides access (404 for what the user may not see), a service
writes the audit event, the template explains the result.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from billing.documents import selectors, services
from billing.documents.exceptions import DocumentsPending, InvalidUpload
from billing.documents.forms import ExportPeriodForm, VerifyUploadForm, too_large_text
from security.decorators import mfa_required, step_up_required


@mfa_required
@require_GET
def download_document(
    request: HttpRequest, invoice_id: int, version: int | None = None
) -> HttpResponse:
    """The invoice's signed PDF (latest, or ``version``) for its customer or a permitted
    accountant."""
    document = selectors.get_document_for_user(request.user, invoice_id, version)
    services.record_document_download(document, by=request.user, request=request)
    response = HttpResponse(bytes(document.content), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    response["X-Content-SHA256"] = document.sha256
    response["Cache-Control"] = "no-store"
    return response


@mfa_required
def export_documents(request: HttpRequest) -> HttpResponse:
    """All signed invoices and credit notes of a period as a ZIP (accountants)."""
    if not selectors.can_download_any(request.user):
        raise PermissionDenied("needs the permission to download invoice documents")
    return _export_with_fresh_factor(request)


@step_up_required  # a bulk export of the books: a fresh second factor
@require_http_methods(["GET", "POST"])
def _export_with_fresh_factor(request: HttpRequest) -> HttpResponse:
    form = ExportPeriodForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        period = {"start": form.cleaned_data["start"], "end": form.cleaned_data["end"]}
        try:
            bundle = services.export_period(**period, by=request.user, request=request)
        except DocumentsPending:
            # Rendering inside the request could take minutes: a job signs them instead.
            waiting = services.queue_period_signing(**period, by=request.user, request=request)
            context = {"form": form, "waiting": waiting}
            return render(request, "documents/export.html", context, status=202)
        response = HttpResponse(bundle.content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{bundle.filename}"'
        response["Cache-Control"] = "no-store"
        return response
    return render(
        request, "documents/export.html", {"form": form}, status=400 if form.errors else 200
    )


@mfa_required
@require_http_methods(["GET", "POST"])
def verify_upload(request: HttpRequest) -> HttpResponse:
    """Upload a PDF and read, in plain words, whether it is a genuine invoice of ours."""
    if not selectors.can_verify(request.user):
        raise PermissionDenied("needs the permission to verify invoice documents")
    result = None
    limit = int(settings.DOCUMENTS_MAX_UPLOAD_BYTES)
    too_large = int(request.META.get("CONTENT_LENGTH") or 0) > limit + 64 * 1024
    upload_error = ""
    if request.method == "POST" and too_large:
        # Refused before the body is parsed: a huge upload never reaches the disk.
        form = VerifyUploadForm()
        upload_error = too_large_text(limit)
    else:
        form = VerifyUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and not too_large and form.is_valid():
        data = form.cleaned_data["pdf"]
        try:
            result = selectors.verify_document(data, user=request.user)
        except InvalidUpload as exc:  # a decompression bomb: refused, never inflated
            form.add_error("pdf", exc.message)
            services.record_verification(
                sha256=hashlib.sha256(data).hexdigest(),
                outcome="refused",
                by=request.user,
                request=request,
            )
        else:
            services.record_verification(
                sha256=result.inspection.sha256,
                outcome=result.outcome,
                by=request.user,
                invoice=result.document.invoice if result.document else None,
                request=request,
            )
    status = 400 if form.errors or upload_error else 200
    context = {"form": form, "result": result, "upload_error": upload_error}
    return render(request, "documents/verify.html", context, status=status)
