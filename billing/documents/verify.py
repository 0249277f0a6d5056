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
from django.conf import settings
from django.utils.translation import gettext as _
from lxml import etree
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.decode_limits import (
    DEFAULT_PURPOSE_LIMITS,
    DecodeLimits,
    DocumentDecodeBudget,
    StreamDecodeLimits,
)
from pyhanko.pdf_utils.misc import PdfDecodeLimitError
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


FACTURX_FILENAME = "factur-x.xml"
_MiB = 1024 * 1024
# An uploaded file is read with every decompression bounded (a "zip bomb" PDF grew a
# worker from 162 MB to 1.6 GB: 20 attachments of 75 MB compressed into 1.46 MB).
_XML = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _decode_limits() -> DecodeLimits:
    """pyHanko's limits for untrusted input, tightened: no stream inflates past
    DOCUMENTS_VERIFY_MAX_STREAM_BYTES, the whole file past DOCUMENTS_VERIFY_MAX_INFLATED_BYTES."""
    stream = int(settings.DOCUMENTS_VERIFY_MAX_STREAM_BYTES)
    total = int(settings.DOCUMENTS_VERIFY_MAX_INFLATED_BYTES)
    return DecodeLimits(
        per_stream=StreamDecodeLimits(max_ratio=1100, ratio_floor=_MiB, max_output_size=stream),
        per_purpose=dict(DEFAULT_PURPOSE_LIMITS),
        document_budget=DocumentDecodeBudget(base_allowance=total, max_ratio=1),
    )


def _too_big(exc: BaseException | None) -> bool:
    """Whether a decompression limit stopped the reading (pyHanko may wrap its error)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, PdfDecodeLimitError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _refuse_bomb() -> InvalidUpload:
    limit = int(settings.DOCUMENTS_VERIFY_MAX_INFLATED_BYTES) // _MiB
    return InvalidUpload(
        _(
            "the file decompresses to more than %(limit)s MiB (or one part of it to more than"
            " %(part)s MiB); it was not read further. Our invoices are far smaller: this is"
            " not one of them"
        )
        % {"limit": limit, "part": int(settings.DOCUMENTS_VERIFY_MAX_STREAM_BYTES) // _MiB},
        field="pdf",
    )


def _attachments(reader: PdfFileReader) -> list[tuple[str, generic.DictionaryObject]]:
    """The embedded files' names and file specifications, without reading any content;
    more than DOCUMENTS_VERIFY_MAX_ATTACHMENTS is refused."""
    most = int(settings.DOCUMENTS_VERIFY_MAX_ATTACHMENTS)
    found: list[tuple[str, generic.DictionaryObject]] = []
    try:
        names = reader.root["/Names"]["/EmbeddedFiles"]
    except (KeyError, TypeError):
        return found
    pending, visited = [names], 0
    while pending:
        node = pending.pop()
        visited += 1
        if visited > 4 * most + 8:
            raise InvalidUpload(
                _("the file's attachment list is too deep or too long (at most %(most)s files)")
                % {"most": most},
                field="pdf",
            )
        node = node.get_object() if hasattr(node, "get_object") else node
        pending += list(node.get("/Kids", []))
        pairs = list(node.get("/Names", []))
        for name, spec in zip(pairs[::2], pairs[1::2], strict=False):
            found.append((str(name), spec.get_object()))
            if len(found) > most:
                raise InvalidUpload(
                    _("the file has more than %(most)s attachments; our invoices carry one")
                    % {"most": most},
                    field="pdf",
                )
    return found


def _facturx_number(reader: PdfFileReader) -> str:
    """The invoice number in the embedded Factur-X XML: only ``factur-x.xml`` is read, and
    only within the decompression limits (never every attachment, as factur-x's own
    extraction does)."""
    xml = b""
    for name, spec in _attachments(reader):
        if name.lower() == FACTURX_FILENAME:
            xml = spec["/EF"]["/F"].get_object().data
            break
    if not xml:
        return ""
    try:
        root = etree.fromstring(xml, parser=_XML)
        ids = root.xpath(
            "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID/text()",
            namespaces={
                "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
                "ram": "urn:un:unece:uncefact:data:standard:"
                "ReusableAggregateBusinessInformationEntity:100",
            },
        )
        return str(ids[0]) if ids else ""
    except etree.XMLSyntaxError:  # a damaged or foreign file: no number, not an error
        return ""


def inspect_pdf(data: bytes, *, known_certificates_pem: Iterable[str]) -> PdfInspection:
    """Validate the signatures of ``data`` against the known (our) certificates.

    Every decompression is bounded (``_decode_limits``) and at most
    DOCUMENTS_VERIFY_MAX_ATTACHMENTS attachments are listed, none but the Factur-X XML
    read: a decompression bomb raises InvalidUpload naming ``pdf``, with memory and time
    bounded by those limits.
    """
    try:
        return _inspect(data, known_certificates_pem)
    except InvalidUpload:
        raise
    except Exception as exc:
        if _too_big(exc):
            raise _refuse_bomb() from None
        raise


def _inspect(data: bytes, known_certificates_pem: Iterable[str]) -> PdfInspection:
    result = PdfInspection(sha256=hashlib.sha256(data).hexdigest())
    known = {}
    for text in known_certificates_pem:
        cert = _cert_from_pem(text)
        known[hashlib.sha256(cert.dump()).hexdigest()] = cert
    try:
        reader = PdfFileReader(BytesIO(data), strict=False, decode_limits=_decode_limits())
        result.document_number = _facturx_number(reader)
        signatures = reader.embedded_signatures
    except InvalidUpload:
        raise
    except Exception as exc:
        if _too_big(exc):
            raise
        result.damaged = True
        result.facts.append(_("The file is damaged: it cannot be read as a PDF."))
        return result
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
    except Exception as exc:
        if _too_big(exc):
            raise
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
