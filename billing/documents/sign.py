"""PAdES signatures with pyHanko, appended as an incremental update.

The signature is PAdES baseline B-B; when ``DOCUMENTS_TSA_URL`` names an RFC
3161 timestamp authority it becomes B-T (a signature timestamp from the TSA).
Signing appends a new revision and leaves the PDF/A-3b + Factur-X bytes
before it untouched, so factur-x still finds its XML in the signed file.
"""

from __future__ import annotations

import functools
from io import BytesIO

from django.conf import settings
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps import HTTPTimeStamper

from billing.documents.keys import SigningIdentity, load_identity

SIGNATURE_FIELD = "TillitSignature"


@functools.lru_cache(maxsize=2)
def _signer(identity: SigningIdentity) -> signers.SimpleSigner:
    # Opening the PKCS#12 runs its key derivation (deliberately slow): once per key.
    signer = signers.SimpleSigner.load_pkcs12_data(
        identity.pkcs12_bytes, other_certs=[], passphrase=identity.passphrase
    )
    assert signer is not None
    return signer


def sign_pdf(pdf: bytes, *, reason: str, identity: SigningIdentity | None = None) -> bytes:
    """``pdf`` with a PAdES signature by the company's certificate (incremental update)."""
    identity = identity or load_identity()
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=settings.DOCUMENTS_SIGNING_LOCATION or None,
    )
    timestamper = (
        HTTPTimeStamper(settings.DOCUMENTS_TSA_URL) if settings.DOCUMENTS_TSA_URL else None
    )
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    out = signers.PdfSigner(metadata, signer=_signer(identity), timestamper=timestamper).sign_pdf(
        writer
    )
    return bytes(out.getvalue())
