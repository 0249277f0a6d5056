"""The company's document-signing key and certificate, kept outside the database.

``settings.DOCUMENTS_SIGNING_KEY_FILE`` is a PKCS#12 file (mode 0600) holding an
ECDSA P-256 private key and its certificate, encrypted with the passphrase from
``DOCUMENTS_KEY_PASSPHRASE`` (or ``DOCUMENTS_KEY_PASSPHRASE_FILE``). ``manage.py
init_signing_key`` creates a self-signed demo certificate or imports a PKCS#12
issued by a real CA. The passphrase and the key are never logged or stored in
the database; only the certificate's SHA-256 fingerprint is (with each signed
document), so a verifier can tell our signatures from anyone else's.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings

from billing.documents.exceptions import SigningKeyError


@dataclass(frozen=True, eq=False)
class SigningIdentity:
    """The loaded key material: what pyHanko needs to sign, and what may be published."""

    pkcs12_bytes: bytes
    passphrase: bytes
    private_key: Any
    certificate: x509.Certificate
    certificate_pem: str
    fingerprint: str
    subject: str
    not_valid_after: datetime.datetime

    def __repr__(self) -> str:  # never show the key or the passphrase
        return f"SigningIdentity(subject={self.subject!r}, fingerprint={self.fingerprint})"


def key_path() -> Path:
    return Path(settings.DOCUMENTS_SIGNING_KEY_FILE)


def passphrase() -> bytes:
    """The key passphrase from the settings; a clear error when it is missing."""
    value = settings.DOCUMENTS_KEY_PASSPHRASE
    if not value:
        raise SigningKeyError(
            "no passphrase: set DOCUMENTS_KEY_PASSPHRASE or DOCUMENTS_KEY_PASSPHRASE_FILE",
            field="DOCUMENTS_KEY_PASSPHRASE",
        )
    return str(value).encode("utf-8")


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 (hex) over the certificate's DER: how documents name their signer."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    """Write 0600, complete or not at all: a racing reader never sees half a key.

    The bytes go to a private temporary file that is then hard-linked into
    place; the link fails (FileExistsError) if another process won the race.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.link(temporary, path)
    finally:
        os.unlink(temporary)


def create_self_signed(
    *, common_name: str, organisation: str, country: str = "SE", days: int = 3 * 365
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new ECDSA P-256 key with a self-signed document-signing certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country[:2] or "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64] or "Tillit"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "Tillit invoices"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pkcs12_bytes(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, *, secret: bytes
) -> bytes:
    """Key and certificate as PKCS#12, encrypted with ``secret`` (AES-256, PBKDF2)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(200_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(secret)
    )
    return pkcs12.serialize_key_and_certificates(
        b"tillit-invoice-signing", key, cert, None, encryption
    )


def create_key_file(
    *, common_name: str, organisation: str, country: str = "SE", path: Path | None = None
) -> Path:
    """Write a new self-signed key + certificate as PKCS#12; refuse to overwrite a file."""
    path = path or key_path()
    if path.exists():
        raise SigningKeyError(
            f"{path} exists; move it away first (documents signed with it stay verifiable)",
            field="DOCUMENTS_SIGNING_KEY_FILE",
        )
    key, cert = create_self_signed(
        common_name=common_name, organisation=organisation, country=country
    )
    _write_private(path, pkcs12_bytes(key, cert, secret=passphrase()))
    _load.cache_clear()
    return path


def import_pkcs12(source: Path, *, source_passphrase: bytes, path: Path | None = None) -> Path:
    """Import a PKCS#12 from a CA, re-encrypted with the configured passphrase."""
    path = path or key_path()
    if path.exists():
        raise SigningKeyError(
            f"{path} exists; move it away first", field="DOCUMENTS_SIGNING_KEY_FILE"
        )
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(source.read_bytes(), source_passphrase)
    except (ValueError, OSError) as exc:
        raise SigningKeyError(
            "the PKCS#12 file cannot be read with that passphrase", field="pkcs12"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert is None:
        # RSA would work with pyHanko too, but costs ~6x per signature (docs/decisions.md).
        raise SigningKeyError("the PKCS#12 must hold an EC key and its certificate", field="pkcs12")
    _write_private(path, pkcs12_bytes(key, cert, secret=passphrase()))
    _load.cache_clear()
    return path


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SigningKeyError(
            f"no signing key at {path}: run `manage.py init_signing_key`",
            field="DOCUMENTS_SIGNING_KEY_FILE",
        )
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and settings.PRODUCTION:
        raise SigningKeyError(
            f"{path} is readable by others; chmod 600 it", field="DOCUMENTS_SIGNING_KEY_FILE"
        )


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float, secret: bytes) -> SigningIdentity:
    data = Path(path).read_bytes()
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(data, secret)
    except ValueError as exc:
        raise SigningKeyError(
            "the signing key cannot be opened: wrong passphrase or damaged file",
            field="DOCUMENTS_KEY_PASSPHRASE",
        ) from exc
    if key is None or cert is None:
        raise SigningKeyError("the PKCS#12 file lacks a key or certificate", field="pkcs12")
    return SigningIdentity(
        pkcs12_bytes=data,
        passphrase=secret,
        private_key=key,
        certificate=cert,
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        fingerprint=certificate_fingerprint(cert),
        subject=cert.subject.rfc4514_string(),
        not_valid_after=cert.not_valid_after_utc,
    )


def load_identity() -> SigningIdentity:
    """The current signing identity; in development a demo key is created on first use."""
    path = key_path()
    if not path.exists() and settings.DOCUMENTS_CREATE_KEYS:
        from billing.selectors import get_company_profile

        profile = get_company_profile()
        name = profile.legal_name if profile else "Tillit demo"
        # Another process may create it first: then that key is the one.
        with contextlib.suppress(SigningKeyError, FileExistsError):
            create_key_file(common_name=f"{name} invoices", organisation=name, path=path)
    _check_file(path)
    return _load(str(path), path.stat().st_mtime, passphrase())
