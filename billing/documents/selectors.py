"""Document reads and access checks: who may fetch or verify which signed PDF."""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from billing.documents import hooks, keys
from billing.documents.models import DocumentCheckFailure, InvoiceDocument, SigningCertificate
from billing.documents.verify import PdfInspection, inspect_pdf
from billing.models import Invoice
from billing.selectors import customer_for_user, invoices_for_user
from security.models import JobAttempt

DOWNLOAD_PERMISSION = "documents.download_invoice_documents"
VERIFY_PERMISSION = "documents.verify_invoice_documents"


def can_download_any(user: Any) -> bool:
    """Staff with the download permission (the Accountant role) fetch any document."""
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_staff
        and user.has_perm(DOWNLOAD_PERMISSION)
    )


def can_verify(user: Any) -> bool:
    """Staff with the verify or download permission, and customers (for their own invoices)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_staff:
        return bool(user.has_perm(VERIFY_PERMISSION) or user.has_perm(DOWNLOAD_PERMISSION))
    return customer_for_user(user) is not None


def visible_invoices(user: Any) -> Any:
    """Invoices whose documents the user may fetch: all for permitted staff, own for customers."""
    if getattr(user, "is_staff", False) and not can_download_any(user):
        return Invoice.objects.none()
    return invoices_for_user(user)


def get_document_for_user(
    user: Any, invoice_pk: Any, version: int | None = None
) -> InvoiceDocument:
    """The invoice's signed PDF (latest, or ``version``), or Http404 when the user may not see it
    or it has not been signed yet (one answer either way)."""
    return get_document_among(visible_invoices(user), invoice_pk, version)


def get_document_among(
    invoices: QuerySet[Invoice], invoice_pk: Any, version: int | None = None
) -> InvoiceDocument:
    """The signed PDF (latest, or ``version``) of invoice ``invoice_pk`` if it is one of
    ``invoices`` (who may see what: the caller's selector), else Http404, as when it has
    not been signed yet."""
    documents = InvoiceDocument.objects.filter(invoice__in=invoices).select_related("invoice")
    try:
        documents = documents.filter(invoice_id=int(invoice_pk))
    except (TypeError, ValueError) as exc:
        raise Http404("No such document") from exc
    if version is not None:
        documents = documents.filter(version=version)
    document = documents.order_by("-version").first()
    if document is None:
        raise Http404("No such document")
    return document


def unsigned_period_invoices(start: datetime.date, end: datetime.date) -> QuerySet[Invoice]:
    """Finalized invoices and credit notes issued in the period that have no signed PDF yet."""
    return (
        Invoice.objects.finalized()
        .filter(issue_date__gte=start, issue_date__lte=end, documents__isnull=True)
        .select_related("credited_invoice", "customer")
        .order_by("pk")
    )


def signed_invoice_ids(invoice_ids: Any) -> set[int]:
    """Which of these invoices (or credit notes) have a signed PDF to download (one query;
    the portal links only to those)."""
    return set(
        InvoiceDocument.objects.filter(invoice_id__in=list(invoice_ids))
        .order_by()
        .values_list("invoice_id", flat=True)
        .distinct()
    )


def latest_document(invoice: Invoice) -> InvoiceDocument | None:
    return InvoiceDocument.objects.filter(invoice=invoice).order_by("-version").first()


def open_check_failure(invoice: Invoice) -> DocumentCheckFailure | None:
    """The invoice's failed Factur-X check that no attempt has passed since, if any (staff
    pages: what stops its PDF from being signed and sent)."""
    return DocumentCheckFailure.objects.filter(invoice=invoice, resolved_at__isnull=True).first()


def known_certificates() -> list[str]:
    """PEM of every certificate our documents were signed with, current one first."""
    pems: list[str] = []
    with contextlib.suppress(keys.SigningKeyError):
        pems.append(keys.load_identity().certificate_pem)
    for pem in SigningCertificate.objects.values_list("certificate", flat=True):
        if pem not in pems:
            pems.append(pem)
    return pems


@dataclass
class Verification:
    """The answer for one PDF, in plain words (``sentences``) and as facts."""

    inspection: PdfInspection
    document: InvoiceDocument | None
    sentences: list[str]

    @property
    def genuine(self) -> bool:
        """Ours, intact, and byte-for-byte a document we issued."""
        return bool(
            self.inspection.signed_by_known_certificate
            and self.inspection.intact
            and self.document is not None
        )

    @property
    def outcome(self) -> str:
        if self.genuine:
            return "genuine"
        if self.inspection.damaged:
            return "damaged"
        if not self.inspection.signed:
            return "unsigned"
        if not self.inspection.signed_by_known_certificate:
            return "foreign_signature"
        if not self.inspection.intact:
            return "modified"
        return "unknown_document"


def _document_name(invoice: Invoice) -> str:
    if invoice.is_credit_note:
        return _("credit note %(number)s") % {"number": invoice.display_number}
    return _("invoice %(number)s") % {"number": invoice.display_number}


def verify_document(
    data: bytes, *, user: Any = None, invoices: QuerySet[Invoice] | None = None
) -> Verification:
    """Verify ``data``; name the invoice only if ``user`` may see it, or (the API) if it is
    one of ``invoices`` (neither: a trusted caller, the command line)."""
    inspection = inspect_pdf(data, known_certificates_pem=known_certificates())
    matches = InvoiceDocument.objects.filter(sha256=inspection.sha256).select_related("invoice")
    if invoices is None and user is not None:
        invoices = visible_invoices(user)
    if invoices is not None:
        matches = matches.filter(invoice__in=invoices)
    document = matches.first()
    sentences = list(inspection.facts)
    if document is not None:
        sentences.append(
            _(
                "It is %(document)s (version %(version)s), exactly as we stored it"
                " (SHA-256 %(sha256)s…)."
            )
            % {
                "document": _document_name(document.invoice),
                "version": document.version,
                "sha256": document.sha256[:16],
            }
        )
    elif inspection.signed_by_known_certificate and inspection.document_number:
        numbered = Invoice.objects.filter(display_number=inspection.document_number)
        if invoices is not None:
            numbered = numbered.filter(pk__in=invoices.values("pk"))
        if numbered.exists():
            sentences.append(
                _(
                    "It claims to be %(number)s, but it does NOT match the file we stored for"
                    " that invoice."
                )
                % {"number": inspection.document_number}
            )
        else:
            sentences.append(_("It does not match any invoice you have access to."))
    elif not inspection.damaged:
        sentences.append(_("It does not match any invoice you have access to."))
    return Verification(inspection=inspection, document=document, sentences=sentences)


def document_job_state(invoice: Invoice) -> JobAttempt | None:
    """The latest attempt of the job that signs the invoice's PDF, while it has none (None
    once it is signed, or if no job ran): failing, given up, lost or running, with the
    error of a failed one."""
    if invoice.is_draft or InvoiceDocument.objects.filter(invoice_id=invoice.pk).exists():
        return None
    return (
        JobAttempt.objects.filter(func__in=(hooks.TASK, hooks.EARLIER_TASK), args=[invoice.pk])
        .order_by("-started_at", "-pk")
        .first()
    )


def signing_certificate_validity() -> tuple[str, datetime.datetime, datetime.datetime] | None:
    """The document signing certificate's fingerprint and validity ``(not before, not
    after)``: its cryptoperiod. None without a key file or when it cannot be read. Read
    from the key file, no query."""
    if not keys.key_path().exists():
        return None
    try:
        identity = keys.load_identity()
    except Exception:  # the dashboards show the certificate as unknown instead
        return None
    return (
        identity.fingerprint,
        identity.certificate.not_valid_before_utc,
        identity.not_valid_after,
    )
