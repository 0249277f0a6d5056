"""Delivery reads: an invoice's deliveries and which may be sent again; what the portal's
security page publishes about our keys."""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from billing.delivery import pgp
from billing.delivery.exceptions import PgpError
from billing.delivery.models import Delivery
from billing.documents import keys
from billing.documents.exceptions import SigningKeyError
from billing.models import Invoice


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


@dataclass(frozen=True)
class PublishedFingerprints:
    """What a customer compares: the SHA-256 of the certificate that signs our PDFs and the
    period ZIP's manifest (``signing-certificate.pem``), and the fingerprint of the PGP key
    that signs our encrypted emails. Empty when the key does not exist yet."""

    signing_certificate_sha256: str
    signing_certificate_subject: str
    pgp_fingerprint: str


def published_fingerprints() -> PublishedFingerprints:
    """The company's key fingerprints, read as they are: a page showing them never creates
    a key (``company_public_keys`` may, on first use)."""
    sha256 = subject = fingerprint = ""
    if keys.key_path().exists():
        with contextlib.suppress(SigningKeyError):
            identity = keys.load_identity()
            sha256, subject = identity.fingerprint, identity.subject
    if Path(settings.DELIVERY_GNUPGHOME).is_dir():
        with contextlib.suppress(PgpError, OSError, ValueError):
            fingerprint = pgp.existing_company_key_fingerprint()
    return PublishedFingerprints(
        signing_certificate_sha256=sha256,
        signing_certificate_subject=subject,
        pgp_fingerprint=fingerprint,
    )


def sending_interrupted(delivery: Delivery, now: datetime.datetime | None = None) -> bool:
    """Claimed for sending more than DELIVERY_SENDING_TIMEOUT_SECONDS ago, with no outcome:
    its worker died mid-send (the message may or may not have gone out)."""
    now = now or timezone.now()
    timeout = datetime.timedelta(seconds=int(settings.DELIVERY_SENDING_TIMEOUT_SECONDS))
    return (
        delivery.status == Delivery.Status.SENDING
        and delivery.claimed_at is not None
        and delivery.claimed_at <= now - timeout
    )


def may_retry(delivery: Delivery, now: datetime.datetime | None = None) -> bool:
    """Failed for good, or interrupted mid-send: staff may send it again (never one that a
    worker is sending now)."""
    return delivery.status == Delivery.Status.FAILED or sending_interrupted(delivery, now)


def invoice_deliveries(invoice: Invoice) -> list[Delivery]:
    """The invoice's deliveries (invoice, reminders, receipt), newest first."""
    return list(Delivery.objects.filter(invoice_id=invoice.pk).order_by("-created_at", "-pk"))


def failed_delivery_count() -> int:
    """Deliveries that failed for good (the clerk's dashboard): one query."""
    return Delivery.objects.filter(status=Delivery.Status.FAILED).count()
