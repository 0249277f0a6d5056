"""The Ed25519 checkpoint key: kept in a file outside the database, never logged.

``settings.AUDIT_SIGNING_KEY_FILE`` holds the private key as unencrypted
PKCS#8 PEM, mode 0600. ``manage.py init_audit_key`` creates it. The
development demo creates it on first use; production refuses to sign without
an existing key file (and refuses a file others can read), so a missing mount
is an error rather than a silently new key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings

from audit.exceptions import AuditKeyError


@dataclass(frozen=True)
class PublicKeyInfo:
    """What may be published about a checkpoint key."""

    key_id: str
    public_key_hex: str
    public_key_pem: str


def key_id_for(public_key_hex: str) -> str:
    """A key's id: SHA-256 (hex) of its 32 raw public-key bytes."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


def public_key_hex(private_key: Ed25519PrivateKey) -> str:
    """The 32 raw public-key bytes, hex: the form stored with every checkpoint."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return raw.hex()


def describe_public_key(public_hex: str) -> PublicKeyInfo:
    """Key id, hex and PEM of a public key."""
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return PublicKeyInfo(
        key_id=key_id_for(public_hex), public_key_hex=public_hex, public_key_pem=pem
    )


def signature_is_valid(public_hex: str, signature_hex: str, message: bytes) -> bool:
    """True when ``signature_hex`` is an Ed25519 signature of ``message`` by ``public_hex``."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, InvalidSignature):
        return False
    return True


def key_path() -> Path:
    """Where the private key lives (read from settings at call time)."""
    return Path(settings.AUDIT_SIGNING_KEY_FILE)


def create_key_file(path: Path | None = None) -> Path:
    """Write a new private key to ``path`` with mode 0600; refuse to overwrite one."""
    path = path or key_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise AuditKeyError(f"AUDIT_SIGNING_KEY_FILE: {path} already exists; not replaced") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def load_signing_key() -> Ed25519PrivateKey:
    """The private key; created on first use in development, required in production."""
    path = key_path()
    if not path.exists():
        if settings.PRODUCTION:
            raise AuditKeyError(
                f"AUDIT_SIGNING_KEY_FILE: {path} does not exist; production never signs with "
                "an improvised key. Create it once with `manage.py init_audit_key`."
            )
        # AuditKeyError here: another process created it a moment ago; use that one.
        with contextlib.suppress(AuditKeyError):
            create_key_file(path)
    if settings.PRODUCTION and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(
            f"AUDIT_SIGNING_KEY_FILE: {path} is readable by group or others; chmod 600 it"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AuditKeyError(
            f"AUDIT_SIGNING_KEY_FILE: {path} is not a readable unencrypted PEM private key"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"AUDIT_SIGNING_KEY_FILE: {path} does not hold an Ed25519 key")
    return key


def current_public_key() -> PublicKeyInfo | None:
    """The signing key's public half, or None when the key file does not exist (yet)."""
    path = key_path()
    if not path.exists():
        return None
    return describe_public_key(public_key_hex(load_signing_key()))


def trusted_public_keys() -> dict[str, str]:
    """key id -> public key hex: the current key plus retired ones from settings."""
    trusted: dict[str, str] = {}
    for public_hex in getattr(settings, "AUDIT_TRUSTED_PUBLIC_KEYS", []):
        trusted[key_id_for(public_hex)] = public_hex.lower()
    current = current_public_key()
    if current is not None:
        trusted[current.key_id] = current.public_key_hex
    return trusted
