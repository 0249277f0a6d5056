"""Document state changes: sign an invoice's PDF, re-render a new version, audit downloads.

Rendering and signing (hundreds of milliseconds) happen before the transaction;
the transaction only locks the invoice, checks which version to write, stores
the bytes with their SHA-256 and writes the audit event.

Before anything is signed, the Factur-X XML is checked against the XSD and every
EN 16931 rule (``render.checked_facturx_xml``). An XML that fails is not signed,
so nothing is stored or sent: the failed rules are recorded for staff
(``DocumentCheckFailure``, audited ``invoice.document_check_failed``) and the
error goes up to the job, which retries; the attempt that passes closes the record.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import record
from billing.documents import export, hooks, keys, render, selectors, sign
from billing.documents.exceptions import (
    DocumentsPending,
    InvalidFacturX,
    RenderError,
    RetryRefused,
)
from billing.documents.models import DocumentCheckFailure, InvoiceDocument, SigningCertificate
from billing.models import Invoice
from security.actors import Actor, Person, user_of


def _produce(invoice: Invoice, *, by: Actor) -> tuple[bytes, keys.SigningIdentity]:
    identity = keys.load_identity()
    try:
        unsigned = render.render_invoice_pdf(invoice)
    except InvalidFacturX as exc:
        record_check_failure(invoice, exc, by=by)
        raise
    label = "credit note" if invoice.is_credit_note else "invoice"
    signed = sign.sign_pdf(
        unsigned, reason=f"Issued {label} {invoice.display_number}", identity=identity
    )
    return signed, identity


def _store(
    invoice: Invoice,
    pdf: bytes,
    identity: keys.SigningIdentity,
    *,
    version: int,
    by: Actor,
    reason: str,
) -> InvoiceDocument:
    SigningCertificate.objects.get_or_create(
        fingerprint=identity.fingerprint, defaults={"certificate": identity.certificate_pem}
    )
    return InvoiceDocument.objects.create(
        invoice=invoice,
        version=version,
        content=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        signer_fingerprint=identity.fingerprint,
        signer_certificate=identity.certificate_pem,
        template_version=render.TEMPLATE_VERSION,
        reason=reason,
        created_by=user_of(by),
    )


def _locked_finalized(invoice: Invoice | int) -> Invoice:
    pk = invoice.pk if isinstance(invoice, Invoice) else invoice
    locked = Invoice.objects.select_for_update(of=("self",)).get(pk=pk)
    if locked.is_draft:
        raise RenderError(f"{locked} is a draft: only finalized invoices get a signed PDF")
    return locked


def sign_invoice_document(invoice: Invoice, *, by: Actor) -> InvoiceDocument:
    """Give a finalized invoice its signed PDF once; if it already has one, return it unchanged."""
    existing = InvoiceDocument.objects.filter(invoice_id=invoice.pk).order_by("version").first()
    if existing is not None:
        return existing
    if invoice.is_draft:
        raise RenderError(f"{invoice} is a draft: only finalized invoices get a signed PDF")
    pdf, identity = _produce(invoice, by=by)
    with transaction.atomic():
        locked = _locked_finalized(invoice)
        first = InvoiceDocument.objects.filter(invoice=locked).order_by("version").first()
        if first is not None:  # a concurrent job signed it first: keep that one
            return first
        document = _store(locked, pdf, identity, version=1, by=by, reason="issued")
        record(
            "invoice.document_signed",
            actor=by,
            obj=locked,
            number=locked.display_number,
            version=1,
            sha256=document.sha256,
            size=document.size,
            signer_fingerprint=identity.fingerprint,
            template_version=document.template_version,
            **_resolve_check_failure(locked),
        )
    return document


RETRY_PERMISSION = "documents.retry_document"


def retry_invoice_document(
    invoice: Invoice, *, by: Person, request: HttpRequest | None = None
) -> bool:
    """Have a finalized invoice that has no signed PDF (its job failed for good) signed and
    delivered again, now: staff with ``documents.retry_document`` only; audited. False when
    DOCUMENTS_ON_FINALIZE is off (nothing is queued)."""
    if not (getattr(by, "is_active", False) and by.has_perm(RETRY_PERMISSION)):
        raise RetryRefused(f"signing an invoice's PDF again needs {RETRY_PERMISSION}")
    failure = selectors.document_job_state(invoice)
    with transaction.atomic():
        locked = _locked_finalized(invoice)
        if InvoiceDocument.objects.filter(invoice=locked).exists():
            raise RetryRefused(f"{locked} already has its signed PDF", field="document")
        queued = hooks.run_after_commit(hooks.TASK, locked.pk)
        record(
            "invoice.document_retried",
            actor=by,
            obj=locked,
            request=request,
            number=locked.display_number,
            queued=queued,
            last_error=failure.error if failure else "",
        )
    return queued


def rerender_invoice_document(invoice: Invoice, *, by: Actor, reason: str) -> InvoiceDocument:
    """Add a new signed version (e.g. after a template change); earlier versions stay."""
    if not reason.strip():
        raise RenderError("say why the invoice is rendered again", field="reason")
    pdf, identity = _produce(invoice, by=by)
    with transaction.atomic():
        locked = _locked_finalized(invoice)
        previous = InvoiceDocument.objects.filter(invoice=locked).order_by("-version").first()
        version = previous.version + 1 if previous else 1
        document = _store(locked, pdf, identity, version=version, by=by, reason=reason[:200])
        record(
            "invoice.document_signed",
            actor=by,
            obj=locked,
            number=locked.display_number,
            version=version,
            sha256=document.sha256,
            size=document.size,
            signer_fingerprint=identity.fingerprint,
            template_version=document.template_version,
            previous_sha256=previous.sha256 if previous else "",
            reason=reason[:200],
            **_resolve_check_failure(locked),
        )
    return document


def record_check_failure(
    invoice: Invoice, failure: InvalidFacturX, *, by: Actor
) -> DocumentCheckFailure:
    """Record (in its own transaction, audited) that the invoice's XML broke these rules:
    the invoice's open failure is updated, or opened."""
    now = timezone.now()
    rules = [rule.as_json() for rule in failure.failures]
    with transaction.atomic():
        locked = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice.pk)
        open_failure = (
            DocumentCheckFailure.objects.select_for_update()
            .filter(invoice=locked, resolved_at__isnull=True)
            .first()
        )
        if open_failure is None:
            open_failure = DocumentCheckFailure.objects.create(
                invoice=locked,
                rules=rules,
                xml_sha256=failure.xml_sha256,
                first_failed_at=now,
                last_failed_at=now,
            )
        else:
            open_failure.rules = rules
            open_failure.xml_sha256 = failure.xml_sha256
            open_failure.attempts += 1
            open_failure.last_failed_at = now
            open_failure.save(update_fields=["rules", "xml_sha256", "attempts", "last_failed_at"])
        record(
            "invoice.document_check_failed",
            actor=by,
            obj=locked,
            number=locked.display_number,
            rules=open_failure.rule_ids,
            attempt=open_failure.attempts,
            xml_sha256=failure.xml_sha256,
        )
    return open_failure


def _resolve_check_failure(locked: Invoice) -> dict[str, Any]:
    """Inside the signing transaction: close the invoice's open check failure, if any (the
    signed-document event then says how many attempts failed before)."""
    open_failure = (
        DocumentCheckFailure.objects.select_for_update()
        .filter(invoice=locked, resolved_at__isnull=True)
        .first()
    )
    if open_failure is None:
        return {}
    open_failure.resolved_at = timezone.now()
    open_failure.save(update_fields=["resolved_at"])
    return {"failed_checks_before": open_failure.attempts}


def record_document_download(
    document: InvoiceDocument, *, by: Actor, request: HttpRequest | None = None
) -> None:
    """Write the audit event for a download of one signed PDF."""
    with transaction.atomic():
        record(
            "invoice.document_downloaded",
            actor=by,
            obj=document.invoice,
            request=request,
            number=document.invoice.display_number,
            version=document.version,
            sha256=document.sha256,
        )


def record_verification(
    *,
    sha256: str,
    outcome: str,
    by: Actor,
    invoice: Invoice | None = None,
    request: HttpRequest | None = None,
) -> None:
    """Write the audit event for a verification of an uploaded or given PDF."""
    with transaction.atomic():
        record(
            "invoice.document_verified",
            actor=by,
            obj=invoice,
            request=request,
            sha256=sha256,
            outcome=outcome,
        )


def sign_period_documents(*, start: Any, end: Any, by: Actor) -> int:
    """Give every invoice of the period that has no signed PDF its first one; how many were
    signed. One whose XML fails a check is recorded and left unsigned; the others go on."""
    first, last = export.parse_period(start, end)
    signed = 0
    for invoice in selectors.unsigned_period_invoices(first, last):
        try:
            sign_invoice_document(invoice, by=by)
        except InvalidFacturX:
            continue
        signed += 1
    return signed


PERIOD_SIGNING_TASK = "billing.documents.tasks.sign_period_documents_job"


def queue_period_signing(
    *, start: Any, end: Any, by: Actor, request: HttpRequest | None = None
) -> int:
    """Have a background job sign the period's invoices that have no PDF yet (audited);
    the number of invoices waiting, 0 when there is nothing to do."""
    first, last = export.parse_period(start, end)
    waiting = selectors.unsigned_period_invoices(first, last).count()
    if waiting == 0:
        return 0
    with transaction.atomic():
        queued = hooks.run_after_commit(
            PERIOD_SIGNING_TASK,
            first.isoformat(),
            last.isoformat(),
            timeout=settings.Q_LONG_TIMEOUT,  # hundreds of invoices: a long job
        )
        record(
            "invoice.documents_signing_queued",
            actor=by,
            request=request,
            period_start=first.isoformat(),
            period_end=last.isoformat(),
            documents=waiting,
            queued=queued,
        )
    return waiting


def export_period(
    *, start: Any, end: Any, by: Actor, request: HttpRequest | None = None
) -> export.PeriodExport:
    """Build the signed ZIP of a period's invoices and credit notes and audit the download.

    Only documents already signed and stored are packed; if an invoice of the period has
    none yet, nothing is exported and ``DocumentsPending`` says how many are missing
    (``queue_period_signing`` has them signed in the background), so the ZIP an
    accountant receives is always the complete period.
    """
    first, last = export.parse_period(start, end)
    waiting = selectors.unsigned_period_invoices(first, last).count()
    if waiting:
        raise DocumentsPending(
            f"{waiting} invoice(s) of the period have no signed PDF yet", count=waiting
        )
    bundle = export.build_period_export(start=first, end=last)
    with transaction.atomic():
        record(
            "invoice.documents_exported",
            actor=by,
            request=request,
            period_start=bundle.start.isoformat(),
            period_end=bundle.end.isoformat(),
            documents=bundle.count,
            manifest_sha256=bundle.manifest_sha256,
            zip_sha256=bundle.zip_sha256,
        )
    return bundle
