"""Delivery reads: what the portal's security page publishes about our keys."""

from __future__ import annotations

from dataclasses import dataclass

from billing.delivery import pgp
from billing.delivery.exceptions import PgpError
from billing.documents import keys


@dataclass(frozen=True)
class CompanyPublicKeys:
    """For the portal's security page: how customers can check our documents and email."""

    signing_certificate_pem: str
    signing_certificate_sha256: str
    signing_certificate_subject: str
    pgp_fingerprint: str
    pgp_public_key: str


def company_public_keys() -> CompanyPublicKeys:
    """The document-signing certificate (and its SHA-256) and the company's PGP public key."""
    identity = keys.load_identity()
    try:
        public = pgp.company_public_key()
        fingerprint, armored = public.fingerprint, public.armored
    except PgpError:
        fingerprint, armored = "", ""
    return CompanyPublicKeys(
        signing_certificate_pem=identity.certificate_pem,
        signing_certificate_sha256=identity.fingerprint,
        signing_certificate_subject=identity.subject,
        pgp_fingerprint=fingerprint,
        pgp_public_key=armored,
    )
