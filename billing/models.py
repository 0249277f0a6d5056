"""Billing data: the seller, customers, numbering series, invoices and their lines.

State changes go through ``billing.services``; reads through ``billing.selectors``.
Amounts are integers in the currency's minor unit (``billing.money.Money``);
quantities, unit prices and VAT rates are Decimal. Once an invoice leaves DRAFT a
database trigger (migration 0002) refuses any change to its content and lines.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from billing.money import Money
from billing.validators import (
    normalize_identity_number,
    validate_country,
    validate_currency,
    validate_vat_id,
)


def default_payment_terms_days() -> int:
    return int(settings.BILLING_DEFAULT_PAYMENT_TERMS_DAYS)


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    SWEDISH = "sv", "Svenska"


class CompanyProfile(models.Model):
    """The seller: one row per installation (``singleton`` is always 1)."""

    singleton = models.PositiveSmallIntegerField(default=1, unique=True, editable=False)
    legal_name = models.CharField(max_length=200)
    organisation_number = models.CharField(max_length=40)
    vat_number = models.CharField(max_length=40, blank=True, validators=[validate_vat_id])
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20)
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2, default="SE", validators=[validate_country])
    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True)
    bankgiro = models.CharField(max_length=20, blank=True)
    iban = models.CharField(max_length=34, blank=True)
    bic = models.CharField(max_length=11, blank=True)
    f_skatt_text = models.CharField(max_length=100, blank=True, default="Godkänd för F-skatt")
    logo = models.FileField(upload_to="company/", blank=True)
    default_payment_terms_days = models.PositiveSmallIntegerField(
        default=default_payment_terms_days
    )
    customer_language = models.CharField(
        max_length=2,
        choices=Language.choices,
        default=Language.SWEDISH,
        help_text="The language a new customer is given in the admin (invoices, emails, portal).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "company profile"
        constraints = [
            models.CheckConstraint(condition=Q(singleton=1), name="billing_company_singleton"),
        ]

    def __str__(self) -> str:
        return self.legal_name

    def clean(self) -> None:
        """Check the organisation number against its national scheme (python-stdnum)."""
        if self.country and self.organisation_number:
            try:
                self.organisation_number = normalize_identity_number(
                    self.organisation_number, kind="company", country=self.country
                )
            except ValidationError as exc:
                raise ValidationError({"organisation_number": exc.messages}) from exc

    def snapshot(self) -> dict[str, Any]:
        """The seller as printed on an invoice, frozen into it at finalization."""
        return {
            "legal_name": self.legal_name,
            "organisation_number": self.organisation_number,
            "vat_number": self.vat_number,
            "address_line1": self.address_line1,
            "address_line2": self.address_line2,
            "postal_code": self.postal_code,
            "city": self.city,
            "country": self.country,
            "email": self.email,
            "phone": self.phone,
            "bankgiro": self.bankgiro,
            "iban": self.iban,
            "bic": self.bic,
            "f_skatt_text": self.f_skatt_text,
        }


class Customer(models.Model):
    """A buyer: a company or a person, with its billing address and preferences."""

    class Kind(models.TextChoices):
        COMPANY = "company", "Company"
        PERSON = "person", "Person"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COMPANY)
    identity_number = models.CharField(
        max_length=40,
        blank=True,
        help_text="Organisation number for a company, personal number for a person.",
    )
    vat_id = models.CharField(max_length=40, blank=True, validators=[validate_vat_id])
    email = models.EmailField()
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="SE", validators=[validate_country])
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.ENGLISH)
    currency = models.CharField(max_length=3, default="SEK", validators=[validate_currency])
    payment_terms_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty: the company profile's default terms."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [
            models.Index(fields=["name"], name="billing_customer_name_idx"),
            # The fraud features count the payments of every customer with one email address.
            models.Index(fields=["email"], name="billing_customer_email_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Check the identity number against its national scheme (python-stdnum)."""
        if self.country and self.identity_number:
            try:
                self.identity_number = normalize_identity_number(
                    self.identity_number, kind=self.kind, country=self.country
                )
            except ValidationError as exc:
                raise ValidationError({"identity_number": exc.messages}) from exc

    def snapshot(self) -> dict[str, Any]:
        """The buyer as printed on an invoice, frozen into it at finalization."""
        return {
            "name": self.name,
            "kind": self.kind,
            "identity_number": self.identity_number,
            "vat_id": self.vat_id,
            "email": self.email,
            "address_line1": self.address_line1,
            "address_line2": self.address_line2,
            "postal_code": self.postal_code,
            "city": self.city,
            "country": self.country,
            "language": self.language,
        }


class PortalAccount(models.Model):
    """Links a portal user to the one customer whose invoices that user may see."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_account"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="portal_accounts")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "portal account"

    def __str__(self) -> str:
        return f"{self.user} → {self.customer}"


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceSeries(models.Model):
    """A numbering series ("F" invoices, "K" credit notes): gapless, under a row lock."""

    code = models.CharField(max_length=10, unique=True)
    kind = models.CharField(max_length=12, choices=InvoiceKind.choices)
    name = models.CharField(max_length=100, blank=True)
    is_default = models.BooleanField(
        default=False, help_text="The series new documents of this kind use."
    )
    next_number = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        verbose_name = "invoice series"
        verbose_name_plural = "invoice series"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(next_number__gte=1), name="billing_series_next_number_positive"
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(is_default=True),
                name="billing_series_one_default_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def display_number(self, number: int) -> str:
        return f"{self.code}-{number:06d}"


class InvoiceQuerySet(models.QuerySet["Invoice"]):
    def invoices(self) -> InvoiceQuerySet:
        """Invoices proper, not credit notes."""
        return self.filter(kind=InvoiceKind.INVOICE)

    def credit_notes(self) -> InvoiceQuerySet:
        return self.filter(kind=InvoiceKind.CREDIT_NOTE)

    def drafts(self) -> InvoiceQuerySet:
        return self.filter(status=Invoice.Status.DRAFT)

    def finalized(self) -> InvoiceQuerySet:
        """Everything that left DRAFT (numbered, frozen)."""
        return self.exclude(status=Invoice.Status.DRAFT)

    def open(self) -> InvoiceQuerySet:
        """Invoices with an amount still due to collect."""
        return self.invoices().filter(status=Invoice.Status.OPEN)

    def overdue(self, today: datetime.date | None = None) -> InvoiceQuerySet:
        """Open invoices whose due date has passed."""
        today = today or timezone.localdate()
        return self.open().filter(due_date__lt=today)

    def for_customer(self, customer: Customer) -> InvoiceQuerySet:
        return self.filter(customer=customer)


class Invoice(models.Model):
    """An invoice or a credit note. Its content is frozen once it leaves DRAFT.

    Amounts are integers in the minor unit of ``currency``. A credit note stores
    positive totals (the amounts it credits) and points at ``credited_invoice``.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    Kind = InvoiceKind

    # The JSON frozen at finalization that only the invoice's documents read (the PDF,
    # its XML, the mail's sender): hot paths that only move money may defer them.
    DOCUMENT_FIELDS = ("seller_snapshot", "buyer_snapshot", "vat_breakdown")

    kind = models.CharField(max_length=12, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    credited_invoice = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_notes",
        help_text="For a credit note: the invoice it credits.",
    )
    # Indexed by billing_invoice_number (series, number) and billing_invoice_customer_idx
    # (customer, status): no second index each to write on every invoice change.
    series = models.ForeignKey(
        InvoiceSeries, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    number = models.PositiveIntegerField(null=True, blank=True, editable=False)
    display_number = models.CharField(max_length=30, blank=True, editable=False)
    status = models.CharField(
        max_length=15, choices=Status.choices, default=Status.DRAFT, editable=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    payment_terms_days = models.PositiveSmallIntegerField(default=default_payment_terms_days)
    currency = models.CharField(max_length=3, default="SEK", validators=[validate_currency])
    seller_snapshot = models.JSONField(default=dict, blank=True, editable=False)
    buyer_snapshot = models.JSONField(default=dict, blank=True, editable=False)
    net_total = models.BigIntegerField(default=0, editable=False)
    vat_total = models.BigIntegerField(default=0, editable=False)
    gross_total = models.BigIntegerField(default=0, editable=False)
    vat_breakdown = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="VAT per (category, rate), frozen at finalization (EN 16931 BG-23).",
    )
    amount_paid = models.BigIntegerField(default=0, editable=False)
    amount_credited = models.BigIntegerField(default=0, editable=False)
    ocr_reference = models.CharField(max_length=25, blank=True, editable=False)
    notes = models.TextField(blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "due_date"], name="billing_invoice_status_due_idx"),
            models.Index(fields=["customer", "status"], name="billing_invoice_customer_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["series", "number"], name="billing_invoice_number"),
            models.UniqueConstraint(
                fields=["ocr_reference"],
                condition=~Q(ocr_reference=""),
                name="billing_invoice_ocr_unique",
            ),
            models.CheckConstraint(
                condition=Q(net_total__gte=0) & Q(vat_total__gte=0),
                name="billing_invoice_totals_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(gross_total=F("net_total") + F("vat_total")),
                name="billing_invoice_gross_is_net_plus_vat",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_credited__gte=0),
                name="billing_invoice_settlements_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__lte=F("gross_total") - F("amount_credited")),
                name="billing_invoice_never_below_zero",
            ),
            models.CheckConstraint(
                condition=(Q(status="draft") & Q(number__isnull=True))
                | (~Q(status="draft") & Q(number__isnull=False)),
                name="billing_invoice_numbered_iff_finalized",
            ),
            models.CheckConstraint(
                condition=(Q(kind="credit_note") & Q(credited_invoice__isnull=False))
                | (Q(kind="invoice") & Q(credited_invoice__isnull=True)),
                name="billing_invoice_credit_note_has_invoice",
            ),
            models.CheckConstraint(
                condition=Q(due_date__isnull=True)
                | Q(issue_date__isnull=True)
                | Q(due_date__gte=F("issue_date")),
                name="billing_invoice_due_not_before_issue",
            ),
        ]

    def __str__(self) -> str:
        label = "Credit note" if self.kind == InvoiceKind.CREDIT_NOTE else "Invoice"
        return f"{label} {self.display_number or f'draft #{self.pk}'}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_credit_note(self) -> bool:
        return self.kind == InvoiceKind.CREDIT_NOTE

    @property
    def amount_due(self) -> int:
        """What the customer still owes, in minor units (0 for credit notes and drafts)."""
        if self.is_credit_note or self.status in (self.Status.DRAFT, self.Status.VOID):
            return 0
        return self.gross_total - self.amount_paid - self.amount_credited

    def money(self, amount: int) -> Money:
        return Money(amount, self.currency)

    @property
    def net(self) -> Money:
        return Money(self.net_total, self.currency)

    @property
    def vat(self) -> Money:
        return Money(self.vat_total, self.currency)

    @property
    def gross(self) -> Money:
        return Money(self.gross_total, self.currency)

    @property
    def due(self) -> Money:
        return Money(self.amount_due, self.currency)


class VatCategory(models.TextChoices):
    """EN 16931 VAT category codes (UNTDID 5305) Tillit supports."""

    STANDARD = "S", "Standard rate"
    ZERO = "Z", "Zero rated"
    EXEMPT = "E", "Exempt from VAT"
    REVERSE_CHARGE = "AE", "Reverse charge"
    INTRA_EU = "K", "Intra-community supply"
    EXPORT = "G", "Export outside the EU"


class InvoiceLine(models.Model):
    """One line: quantity x unit price (Decimal), its VAT category/rate and its net.

    ``net_amount`` is integer minor units, computed by the service (half-up).
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(
        max_digits=14, decimal_places=4, validators=[MinValueValidator(0)]
    )
    unit = models.CharField(max_length=20, blank=True)
    unit_price = models.DecimalField(
        max_digits=16, decimal_places=4, validators=[MinValueValidator(0)]
    )
    vat_category = models.CharField(
        max_length=2, choices=VatCategory.choices, default=VatCategory.STANDARD
    )
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    net_amount = models.BigIntegerField(default=0, editable=False)
    credited_line = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_lines",
        help_text="On a credit note: the invoice line this line credits.",
    )

    class Meta:
        ordering = ["invoice", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="billing_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="billing_line_unit_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(net_amount__gte=0), name="billing_line_net_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lt=100),
                name="billing_line_vat_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(vat_category="S", vat_rate__gt=0)
                | (~Q(vat_category="S") & Q(vat_rate=0)),
                name="billing_line_vat_category_rate",
            ),
        ]

    def __str__(self) -> str:
        return self.description
