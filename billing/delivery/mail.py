"""Building the emails: PGP/MIME (RFC 3156) with the signed PDF, or a bare portal link.

The plain message carries no amount, no account details and no attachment: only
who sent it, that a document is waiting, and a single-use expiring link that
still needs the customer's login (and second factor).
"""

from __future__ import annotations

from email import encoders
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.message import SafeMIMEMultipart

from billing.delivery import pgp
from billing.documents.models import InvoiceDocument
from billing.models import Invoice


def _seller(invoice: Invoice) -> str:
    return str(invoice.seller_snapshot.get("legal_name") or "Tillit")


NOTICE_KINDS = frozenset({"receipt", "refund", "reopened"})
"""Kinds that are a short notice about an invoice (no PDF attached)."""


def _what(invoice: Invoice, kind: str) -> str:
    if kind == "reminder":
        return "Payment reminder"
    if kind == "receipt":
        return "Payment receipt for invoice"
    if kind == "refund":
        return "Refund receipt for invoice"
    if kind == "reopened":
        return "Payment reversed on invoice"
    return "Credit note" if invoice.is_credit_note else "Invoice"


def subject_for(invoice: Invoice, kind: str) -> str:
    """Subjects travel unencrypted: they name the document, never an amount."""
    return f"{_what(invoice, kind)} {invoice.display_number} from {_seller(invoice)}"


def link_body(invoice: Invoice, kind: str, url: str, days: int) -> str:
    what = _what(invoice, kind).lower()
    if kind == "reminder":
        lead = f"{_seller(invoice)} reminds you that invoice {invoice.display_number} is overdue."
    elif kind == "receipt":
        lead = (
            f"{_seller(invoice)} has received your payment: invoice {invoice.display_number}"
            " is paid. Thank you. Your receipt is waiting in the customer portal."
        )
    elif kind == "refund":
        lead = (
            f"{_seller(invoice)} has refunded a payment on invoice {invoice.display_number}"
            " and issued a credit note for it. Your refund receipt is waiting in the customer"
            " portal."
        )
    elif kind == "reopened":
        lead = (
            f"{_seller(invoice)} has reversed a payment on invoice {invoice.display_number}:"
            " the refunded amount is owed again, and the invoice is open. The details are in"
            " the customer portal."
        )
    else:
        lead = f"{_seller(invoice)} has sent you a new {what}: {invoice.display_number}."
    return (
        f"Hello,\n\n{lead}\n\n"
        f"Open it in the customer portal:\n{url}\n\n"
        f"The link works once and expires in {days} days. You will be asked to sign in "
        "(and confirm with your second factor), so a forwarded link is useless to others.\n\n"
        "For your security this email contains no amounts or payment details. If you did "
        "not expect it, do not click: sign in to the portal as you usually do instead.\n"
    )


def link_message(invoice: Invoice, *, kind: str, url: str, to: str) -> EmailMessage:
    return EmailMessage(
        subject=subject_for(invoice, kind),
        body=link_body(invoice, kind, url, int(settings.DELIVERY_LINK_DAYS)),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )


def _receipt_entity(invoice: Invoice, receipt_url: str, kind: str = "receipt") -> MIMEText:
    """The cleartext of a notice (it is encrypted, so it may state the amounts)."""
    paid = invoice.money(invoice.amount_paid).format()
    due = invoice.money(invoice.amount_due).format()
    credited = invoice.money(invoice.amount_credited).format()
    if kind == "refund":
        lead = (
            f"{_seller(invoice)} has refunded a payment on invoice {invoice.display_number}"
            f" and issued a credit note for it: {paid} paid, {credited} credited, {due} due."
            "\n\nYour refund receipt"
        )
    elif kind == "reopened":
        lead = (
            f"{_seller(invoice)} has reversed a payment on invoice {invoice.display_number}:"
            f" the refunded amount is owed again. The invoice is open with {due} due"
            f"{f' (due date {invoice.due_date})' if invoice.due_date else ''}.\n\nThe invoice"
        )
    else:
        lead = (
            f"{_seller(invoice)} has received your payment: invoice "
            f"{invoice.display_number} is paid in full ({paid} paid, {due} due). Thank you."
            "\n\nThe receipt"
        )
    return MIMEText(
        f"Hello,\n\n{lead} is also in the customer portal (sign in first): {receipt_url}\n",
        "plain",
        "utf-8",
    )


def _inner_entity(invoice: Invoice, kind: str, document: InvoiceDocument) -> MIMEMultipart:
    """The cleartext MIME entity that gets signed and encrypted: text and the signed PDF."""
    inner = MIMEMultipart("mixed")
    what = _what(invoice, kind).lower()
    text = (
        f"Hello,\n\nattached is {what} {invoice.display_number} from {_seller(invoice)}, "
        "digitally signed (PAdES). Amount due: "
        f"{invoice.money(invoice.amount_due).format()}"
        f"{f', due {invoice.due_date}' if invoice.due_date and not invoice.is_credit_note else ''}"
        f".\nSHA-256 of the PDF: {document.sha256}\n"
    )
    inner.attach(MIMEText(text, "plain", "utf-8"))
    attachment = MIMEApplication(bytes(document.content), "pdf")
    attachment.add_header("Content-Disposition", "attachment", filename=document.filename)
    inner.attach(attachment)
    return inner


class PgpMimeMessage(EmailMessage):
    """A multipart/encrypted (RFC 3156) email; Django's SMTP backend sends it as built."""

    def __init__(self, *, armored: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.armored = armored

    def message(self, *args: Any, **kwargs: Any) -> Any:
        outer = SafeMIMEMultipart(
            _subtype="encrypted", encoding=self.encoding, protocol="application/pgp-encrypted"
        )
        outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 3156)."
        control = MIMEBase("application", "pgp-encrypted")
        control.set_payload("Version: 1\n")
        control.add_header("Content-Description", "PGP/MIME version identification")
        outer.attach(control)
        body = MIMEBase("application", "octet-stream", name="encrypted.asc")
        body.set_payload(self.armored)
        encoders.encode_7or8bit(body)
        body.add_header("Content-Description", "OpenPGP encrypted message")
        body.add_header("Content-Disposition", "inline", filename="encrypted.asc")
        outer.attach(body)
        outer["Subject"] = str(self.subject)
        outer["From"] = self.from_email
        outer["To"] = ", ".join(self.to)
        outer["Date"] = formatdate(localtime=True)
        outer["Message-ID"] = make_msgid(domain=self.from_email.rsplit("@", 1)[-1])
        return outer


def pgp_message(
    invoice: Invoice,
    *,
    kind: str,
    document: InvoiceDocument | None,
    to: str,
    key: Any,
    receipt_url: str = "",
) -> PgpMimeMessage:
    """Signed by the company key, encrypted to the customer's: the document (with its PDF)
    or, for a notice (receipt, refund, reopened), its text."""
    inner: MIMEMultipart | MIMEText
    if kind in NOTICE_KINDS:
        inner = _receipt_entity(invoice, receipt_url, kind)
    else:
        assert document is not None
        inner = _inner_entity(invoice, kind, document)
    cleartext = inner.as_bytes(policy=inner.policy.clone(linesep="\r\n"))
    armored = pgp.sign_and_encrypt(
        cleartext, recipient_key=key.public_key, recipient_fingerprint=key.fingerprint
    )
    return PgpMimeMessage(
        armored=armored,
        subject=subject_for(invoice, kind),
        body="",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
