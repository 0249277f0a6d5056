"""Signed invoice documents: every version kept, each with its SHA-256.

A document is written once by ``billing.documents.services`` and never changed:
a database trigger (migration 0002) refuses UPDATE and DELETE. Re-rendering an
invoice (after a template change) adds version 2, 3, ...; version 1 stays.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Max, OuterRef, Subquery

from billing.models import Invoice


class InvoiceDocumentQuerySet(models.QuerySet["InvoiceDocument"]):
    def current(self) -> InvoiceDocumentQuerySet:
        """The latest version of each invoice's document."""
        latest = (
            InvoiceDocument.objects.filter(invoice=OuterRef("invoice"))
            .values("invoice")
            .annotate(latest=Max("version"))
            .values("latest")
        )
        return self.filter(version=Subquery(latest))

    def without_content(self) -> InvoiceDocumentQuerySet:
        return self.defer("content")


class InvoiceDocument(models.Model):
    """One signed PDF of an invoice or credit note (PDF/A-3b, Factur-X, PAdES)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="documents")
    version = models.PositiveIntegerField()
    content = models.BinaryField(editable=False)
    sha256 = models.CharField(max_length=64, unique=True, editable=False)
    size = models.PositiveIntegerField(editable=False)
    signer_fingerprint = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the signing certificate (DER)."
    )
    signer_certificate = models.TextField(editable=False, help_text="PEM, for verification.")
    template_version = models.CharField(max_length=20, editable=False)
    reason = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    objects = InvoiceDocumentQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "version"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "version"], name="documents_one_version"),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="documents_version_1up"
            ),
        ]
        permissions = [
            ("download_invoice_documents", "Can download signed invoice PDFs and period exports"),
            ("verify_invoice_documents", "Can verify uploaded invoice PDFs"),
            ("retry_document", "Can have a failed invoice document signed again"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice} v{self.version}"

    @property
    def filename(self) -> str:
        label = "credit-note" if self.invoice.is_credit_note else "invoice"
        suffix = f"-v{self.version}" if self.version > 1 else ""
        return f"{label}-{self.invoice.display_number}{suffix}.pdf"


class SigningCertificate(models.Model):
    """Every certificate the company's documents were ever signed with, one row each.

    Verification trusts these (``selectors.known_certificates``): reading them here
    costs the same however many documents there are, where a DISTINCT over the
    documents' own copies grew with every invoice (48 ms at 6,000 documents).
    Written by ``services`` in the transaction that stores a document.
    """

    fingerprint = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the certificate (DER)."
    )
    certificate = models.TextField(editable=False, help_text="PEM.")
    first_used_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["first_used_at", "pk"]

    def __str__(self) -> str:
        return self.fingerprint[:16]


class DocumentCheckFailure(models.Model):
    """An invoice whose Factur-X XML broke the XSD or EN 16931 rules when its PDF was to be
    signed: nothing was signed or sent. Staff see the rules on the invoice's admin page.

    One open row per invoice: each retry that fails again updates it (its rules, the
    attempt count and time); the attempt that passes closes it (``resolved_at``) in the
    transaction that stores the signed document. Written by ``services`` only.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="check_failures")
    rules = models.JSONField(
        default=list, editable=False, help_text="Each failed rule: its id, text and location."
    )
    xml_sha256 = models.CharField(
        max_length=64, editable=False, help_text="SHA-256 of the XML that failed (last attempt)."
    )
    attempts = models.PositiveIntegerField(default=1, editable=False)
    first_failed_at = models.DateTimeField(editable=False)
    last_failed_at = models.DateTimeField(editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-last_failed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=models.Q(resolved_at__isnull=True),
                name="documents_one_open_check_failure",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice}: {', '.join(self.rule_ids)}"

    @property
    def rule_ids(self) -> list[str]:
        return list(dict.fromkeys(str(rule.get("rule", "?")) for rule in self.rules))
