"""OpenPGP with python-gnupg over GnuPG 2, in the app's own GnuPG home.

``settings.DELIVERY_GNUPGHOME`` (default var/gnupg, mode 0700) holds the
company's PGP key (Ed25519 signing, Curve25519 encryption), protected by
``DOCUMENTS_KEY_PASSPHRASE``, and the customers' public keys imported for
encryption. Passphrases go to gpg through loopback pinentry on its stdin, never
on a command line or in a log. A customer's uploaded key is first inspected in
a throw-away home, so a bad key never touches the app's keyring.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gnupg
from django.conf import settings

from billing.delivery.exceptions import InvalidPgpKey, PgpError

COMPANY_KEY_EXPIRY = "3y"


@dataclass(frozen=True)
class PublicKeyInfo:
    fingerprint: str
    user_ids: list[str]
    expires_at: datetime.datetime | None
    armored: str


def gpg_for(home: Path) -> gnupg.GPG:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    return gnupg.GPG(gnupghome=str(home), use_agent=False)


def app_gpg() -> gnupg.GPG:
    return gpg_for(Path(settings.DELIVERY_GNUPGHOME))


def kill_agent(home: Path) -> None:
    """Stop the gpg-agent of ``home`` (tests; a rotated home)."""
    gpgconf = shutil.which("gpgconf")
    if gpgconf:
        subprocess.run(  # noqa: S603 - fixed program, our own path
            [gpgconf, "--homedir", str(home), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )


@contextlib.contextmanager
def scratch_home() -> Iterator[gnupg.GPG]:
    """A throw-away GnuPG home (short path: gpg-agent's socket must fit in 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="tg", dir="/tmp"))
    try:
        yield gpg_for(path)
    finally:
        kill_agent(path)
        shutil.rmtree(path, ignore_errors=True)


def _expiry(raw: Any) -> datetime.datetime | None:
    if not raw:
        return None
    return datetime.datetime.fromtimestamp(int(raw), tz=datetime.UTC)


def inspect_public_key(armored: str, *, now: datetime.datetime) -> PublicKeyInfo:
    """Parse one armored public key; refuse a malformed, secret, revoked, expired or
    sign-only key, naming the field ``pgp_key``."""
    text = (armored or "").strip()
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        raise InvalidPgpKey(
            "paste an ASCII-armored OpenPGP public key (BEGIN PGP PUBLIC KEY BLOCK)"
        )
    if "PRIVATE KEY" in text:
        raise InvalidPgpKey("this is a private key: upload only the public key")
    if len(text) > 64 * 1024:
        raise InvalidPgpKey("the key is larger than 64 KiB")
    with scratch_home() as gpg:
        result = gpg.import_keys(text)
        keys = gpg.list_keys()
        if result.count == 0 or not keys:
            raise InvalidPgpKey("the key cannot be read (malformed or damaged)")
        if len(keys) != 1:
            raise InvalidPgpKey("upload exactly one public key, not several")
        key = keys[0]
        if key.get("trust") == "r":
            raise InvalidPgpKey("the key is revoked")
        expires = _expiry(key.get("expires"))
        if key.get("trust") == "e" or (expires is not None and expires <= now):
            raise InvalidPgpKey(f"the key expired on {expires:%Y-%m-%d}" if expires else "expired")
        capabilities = str(key.get("cap", ""))
        if "E" not in capabilities:
            raise InvalidPgpKey("the key cannot encrypt (it has no usable encryption subkey)")
        exported = gpg.export_keys(key["fingerprint"])
        return PublicKeyInfo(
            fingerprint=key["fingerprint"],
            user_ids=list(key.get("uids", [])),
            expires_at=expires,
            armored=str(exported),
        )


def _company_key(gpg: gnupg.GPG) -> dict[str, Any] | None:
    email = settings.DEFAULT_FROM_EMAIL
    for key in gpg.list_keys(secret=True):
        if any(email in uid for uid in key.get("uids", [])):
            return dict(key)
    return None


def create_company_key(*, name: str) -> str:
    """Generate the company's PGP key in the app home; refuse if one exists. Its fingerprint."""
    gpg = app_gpg()
    if _company_key(gpg) is not None:
        raise PgpError("the company already has a PGP key in DELIVERY_GNUPGHOME")
    from billing.documents.keys import passphrase

    spec = gpg.gen_key_input(
        key_type="EDDSA",
        key_curve="ed25519",
        key_usage="sign",
        subkey_type="ECDH",
        subkey_curve="cv25519",
        subkey_usage="encrypt",
        name_real=name[:60] or "Tillit",
        name_email=settings.DEFAULT_FROM_EMAIL,
        expire_date=COMPANY_KEY_EXPIRY,
        passphrase=passphrase().decode("utf-8"),
    )
    key = gpg.gen_key(spec)
    # The agent caches the passphrase while generating: drop it, so every later
    # signature needs the configured passphrase again.
    kill_agent(Path(settings.DELIVERY_GNUPGHOME))
    if not key.fingerprint:
        raise PgpError("gpg could not create the company key")
    return str(key.fingerprint)


def existing_company_key_fingerprint() -> str:
    """The company's PGP fingerprint if the key exists ("" if not); never creates one."""
    key = _company_key(app_gpg())
    return str(key["fingerprint"]) if key is not None else ""


def company_key_fingerprint() -> str:
    """The company's PGP fingerprint; created on first use where DOCUMENTS_CREATE_KEYS allows."""
    key = _company_key(app_gpg())
    if key is not None:
        return str(key["fingerprint"])
    if not settings.DOCUMENTS_CREATE_KEYS:
        raise PgpError("no company PGP key: run `manage.py init_pgp_key`")
    from billing.selectors import get_company_profile

    profile = get_company_profile()
    return create_company_key(name=profile.legal_name if profile else "Tillit")


def company_public_key() -> PublicKeyInfo:
    gpg = app_gpg()
    fingerprint = company_key_fingerprint()
    key = next(k for k in gpg.list_keys() if k["fingerprint"] == fingerprint)
    return PublicKeyInfo(
        fingerprint=fingerprint,
        user_ids=list(key.get("uids", [])),
        expires_at=_expiry(key.get("expires")),
        armored=str(gpg.export_keys(fingerprint)),
    )


def sign_and_encrypt(data: bytes, *, recipient_key: str, recipient_fingerprint: str) -> str:
    """``data`` signed by the company key and encrypted to the recipient (ASCII armor)."""
    from billing.documents.keys import passphrase

    gpg = app_gpg()
    signer = company_key_fingerprint()
    imported = gpg.import_keys(recipient_key)
    if recipient_fingerprint not in (imported.fingerprints or []):
        raise PgpError("the customer's stored key could not be imported")
    result = gpg.encrypt(
        data,
        recipients=[recipient_fingerprint],
        sign=signer,
        passphrase=passphrase().decode("utf-8"),
        armor=True,
        always_trust=True,  # the key is pinned by its fingerprint, checked at upload
    )
    if not result.ok:
        raise PgpError(f"gpg could not sign and encrypt: {result.status}")
    return str(result)
