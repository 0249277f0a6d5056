"""Check a PDF someone hands us: signed by our certificate? intact? which invoice?

``inspect_pdf`` answers from the file alone and the known certificates; the
selector ``billing.documents.selectors.verify_document`` adds what the database
knows (the stored hash, the invoice). Every outcome is a plain sentence, shown
as-is by the command and the upload page.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from django.utils.translation import gettext as _
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from billing.documents.exceptions import InvalidUpload

logger = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF-"


@dataclass
class PdfInspection:
    """What the file itself says; ``facts`` are the plain-words findings in order."""

    sha256: str
    signed: bool = False
    signer_fingerprint: str = ""
    signer_subject: str = ""
    signed_by_known_certificate: bool = False
    intact: bool = False
    damaged: bool = False
    document_number: str = ""
    facts: list[str] = field(default_factory=list)


def check_pdf_upload(data: bytes, *, max_bytes: int, field_name: str = "file") -> None:
    """Refuse an empty, oversized or non-PDF upload, naming the field."""
    if not data:
        raise InvalidUpload(_("the file is empty"), field=field_name)
    if len(data) > max_bytes:
        raise InvalidUpload(
            _("the file is larger than the %(limit)s bytes limit") % {"limit": max_bytes},
            field=field_name,
        )
    if PDF_MAGIC not in data[:1024]:
        raise InvalidUpload(_("this is not a PDF file (no %PDF- header)"), field=field_name)


def _cert_from_pem(text: str) -> asn1_x509.Certificate:
    _, _, der = pem.unarmor(text.encode("ascii"))
    return asn1_x509.Certificate.load(der)


def _facturx_number(data: bytes) -> str:
    try:
        import facturx
        from lxml import etree

        _name, xml = facturx.get_xml_from_pdf(data, check_xsd=False)
        if not xml:
            return ""
        root = etree.fromstring(xml)
        ids = root.xpath(
            "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID/text()",
            namespaces={
                "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
                "ram": "urn:un:unece:uncefact:data:standard:"
                "ReusableAggregateBusinessInformationEntity:100",
            },
        )
        return str(ids[0]) if ids else ""
    except Exception:  # a damaged or foreign file: no number, not an error
        return ""


def inspect_pdf(data: bytes, *, known_certificates_pem: Iterable[str]) -> PdfInspection:
    """Validate the signatures of ``data`` against the known (our) certificates."""
    result = PdfInspection(sha256=hashlib.sha256(data).hexdigest())
    known = {}
    for text in known_certificates_pem:
        cert = _cert_from_pem(text)
        known[hashlib.sha256(cert.dump()).hexdigest()] = cert
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception:
        result.damaged = True
        result.facts.append(_("The file is damaged: it cannot be read as a PDF."))
        return result
    result.document_number = _facturx_number(data)
    if not signatures:
        result.facts.append(_("The file carries no digital signature."))
        return result
    result.signed = True
    embedded = signatures[-1]
    try:
        cert = embedded.signer_cert
        result.signer_fingerprint = hashlib.sha256(cert.dump()).hexdigest()
        result.signer_subject = cert.subject.human_friendly
        context = ValidationContext(
            trust_roots=list(known.values()), allow_fetching=False, revocation_mode="soft-fail"
        )
        status = validate_pdf_signature(embedded, context)
    except Exception:
        result.damaged = True
        result.facts.append(
            _("The signature cannot be read: the file was modified or damaged after signing.")
        )
        return result
    result.signed_by_known_certificate = result.signer_fingerprint in known
    if result.signed_by_known_certificate:
        result.facts.append(_("It is signed by this company's document-signing certificate."))
    else:
        result.facts.append(
            _("It is signed, but NOT by this company's certificate (signer: %(signer)s).")
            % {"signer": result.signer_subject}
        )
    covers_all = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    result.intact = bool(status.intact and status.valid and covers_all)
    if result.intact:
        result.facts.append(_("Nothing in it has changed since it was signed."))
    elif status.intact and status.valid:
        result.facts.append(_("Content was added to the file after it was signed."))
    else:
        result.facts.append(_("It was MODIFIED after signing: the signature no longer matches."))
    return result


__all__ = ["PdfInspection", "check_pdf_upload", "inspect_pdf"]
