"""Building the emails: PGP/MIME (RFC 3156) with the signed PDF, or a bare portal link.

Every text is a gettext string: the delivery service builds a message under the
customer's language (``Customer.language``), so the subject, the body and its amounts
read the way the customer reads the portal.

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
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from billing.delivery import pgp
from billing.documents.models import InvoiceDocument
from billing.models import Invoice


def _seller(invoice: Invoice) -> str:
    return str(invoice.seller_snapshot.get("legal_name") or "Tillit")


NOTICE_KINDS = frozenset({"receipt", "refund", "reopened"})
"""Kinds that are a short notice about an invoice (no PDF attached)."""


def _what(invoice: Invoice, kind: str) -> str:
    if kind == "reminder":
        return _("Payment reminder")
    if kind == "receipt":
        return _("Payment receipt for invoice")
    if kind == "refund":
        return _("Refund receipt for invoice")
    if kind == "reopened":
        return _("Payment reversed on invoice")
    return _("Credit note") if invoice.is_credit_note else _("Invoice")


def _names(invoice: Invoice) -> dict[str, str]:
    return {"number": invoice.display_number, "seller": _seller(invoice)}


def _amount(invoice: Invoice, minor: int) -> str:
    return invoice.money(minor).format(get_language() or "en")


def subject_for(invoice: Invoice, kind: str) -> str:
    """Subjects travel unencrypted: they name the document, never an amount."""
    return _("%(what)s %(number)s from %(seller)s") % {
        "what": _what(invoice, kind),
        **_names(invoice),
    }


def link_body(invoice: Invoice, kind: str, url: str, days: int) -> str:
    """The plain message: who sent what, and the single-use link; no amount, no details."""
    if kind == "reminder":
        lead = _("%(seller)s reminds you that invoice %(number)s is overdue.")
    elif kind == "receipt":
        lead = _(
            "%(seller)s has received your payment: invoice %(number)s is paid. Thank you."
            " Your receipt is waiting in the customer portal."
        )
    elif kind == "refund":
        lead = _(
            "%(seller)s has refunded a payment on invoice %(number)s and issued a credit note"
            " for it. Your refund receipt is waiting in the customer portal."
        )
    elif kind == "reopened":
        lead = _(
            "%(seller)s has reversed a payment on invoice %(number)s: the refunded amount is"
            " owed again, and the invoice is open. The details are in the customer portal."
        )
    elif invoice.is_credit_note:
        lead = _("%(seller)s has sent you a new credit note: %(number)s.")
    else:
        lead = _("%(seller)s has sent you a new invoice: %(number)s.")
    paragraphs = [
        _("Hello,"),
        lead % _names(invoice),
        f"{_('Open it in the customer portal:')}\n{url}",
        ngettext(
            "The link works once and expires in %(days)s day. You will be asked to sign in"
            " (and confirm with your second factor), so a forwarded link is useless to others.",
            "The link works once and expires in %(days)s days. You will be asked to sign in"
            " (and confirm with your second factor), so a forwarded link is useless to others.",
            days,
        )
        % {"days": days},
        _(
            "For your security this email contains no amounts or payment details. If you did"
            " not expect it, do not click: sign in to the portal as you usually do instead."
        ),
    ]
    return "\n\n".join(paragraphs) + "\n"


def link_message(invoice: Invoice, *, kind: str, url: str, to: str) -> EmailMessage:
    """The plain message in the customer's language (the caller activates it)."""
    return EmailMessage(
        subject=subject_for(invoice, kind),
        body=link_body(invoice, kind, url, int(settings.DELIVERY_LINK_DAYS)),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )


def _receipt_entity(invoice: Invoice, receipt_url: str, kind: str = "receipt") -> MIMEText:
    """The cleartext of a notice (it is encrypted, so it may state the amounts)."""
    amounts = {
        **_names(invoice),
        "paid": _amount(invoice, invoice.amount_paid),
        "due": _amount(invoice, invoice.amount_due),
        "credited": _amount(invoice, invoice.amount_credited),
    }
    if kind == "refund":
        lead = _(
            "%(seller)s has refunded a payment on invoice %(number)s and issued a credit note"
            " for it: %(paid)s paid, %(credited)s credited, %(due)s due."
        )
        where = _("Your refund receipt is also in the customer portal (sign in first): %(url)s")
    elif kind == "reopened":
        if invoice.due_date:
            lead = _(
                "%(seller)s has reversed a payment on invoice %(number)s: the refunded amount"
                " is owed again. The invoice is open with %(due)s due (due date %(date)s)."
            )
            amounts["date"] = invoice.due_date.isoformat()
        else:
            lead = _(
                "%(seller)s has reversed a payment on invoice %(number)s: the refunded amount"
                " is owed again. The invoice is open with %(due)s due."
            )
        where = _("The invoice is also in the customer portal (sign in first): %(url)s")
    else:
        lead = _(
            "%(seller)s has received your payment: invoice %(number)s is paid in full"
            " (%(paid)s paid, %(due)s due). Thank you."
        )
        where = _("The receipt is also in the customer portal (sign in first): %(url)s")
    paragraphs = [_("Hello,"), lead % amounts, where % {"url": receipt_url}]
    return MIMEText("\n\n".join(paragraphs) + "\n", "plain", "utf-8")


def _inner_entity(invoice: Invoice, kind: str, document: InvoiceDocument) -> MIMEMultipart:
    """The cleartext MIME entity that gets signed and encrypted: text and the signed PDF."""
    inner = MIMEMultipart("mixed")
    if kind == "reminder":
        lead = _(
            "Invoice %(number)s from %(seller)s is overdue. Attached is the invoice,"
            " digitally signed (PAdES)."
        )
    elif invoice.is_credit_note:
        lead = _("Attached is credit note %(number)s from %(seller)s, digitally signed (PAdES).")
    else:
        lead = _("Attached is invoice %(number)s from %(seller)s, digitally signed (PAdES).")
    amount = _amount(invoice, invoice.amount_due)
    if invoice.due_date and not invoice.is_credit_note:
        due = _("Amount due: %(amount)s, due %(date)s.") % {
            "amount": amount,
            "date": invoice.due_date.isoformat(),
        }
    else:
        due = _("Amount due: %(amount)s.") % {"amount": amount}
    text = "\n\n".join(
        [
            _("Hello,"),
            f"{lead % _names(invoice)} {due}",
            _("SHA-256 of the PDF: %(sha256)s") % {"sha256": document.sha256},
        ]
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
