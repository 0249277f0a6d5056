"""The ID-token signing key's files: the current key and the retired ones beside it.

Plain file work, without Django (config/settings.py reads the keys through it before the
apps load); ``security.services.oidc_keys`` rotates and prunes with it and audits.

- The current key is one PEM file (PKCS #8, RSA 3072 bits), mode 0600, written whole
  (``security.private_files``) so a reader never sees half a key.
- A retired key is a copy of a key that was current, named for its retirement moment
  (``retired-20261207T163000123456Z.pem``), mode 0600, in its own 0700 directory.
- A retired key is published (its public part in the JWKS) while its retirement is younger
  than the overlap, so an ID token it signed just before the rotation still verifies; after
  that it is only waiting to be deleted.
"""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from security.private_files import write_private_file

KEY_BITS = 3072
_PREFIX = "retired-"
_STAMP = "%Y%m%dT%H%M%S%fZ"


def new_private_key_pem() -> str:
    """A fresh RSA key for RS256, as unencrypted PKCS #8 PEM (kept in a 0600 file)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@functools.cache
def key_id(pem: str) -> str:
    """A key's id as the JWKS and the ID tokens' ``kid`` name it: its RFC 7638 thumbprint
    (SHA-256 of the public key's canonical JWK, as django-oauth-toolkit computes it)."""
    from jwcrypto import jwk

    return str(jwk.JWK.from_pem(pem.encode("ascii")).thumbprint())


def create_key_file(path: Path) -> None:
    """Create the current key at ``path`` unless one exists (another process creating it
    at the same moment wins; its key is the one read)."""
    write_private_file(path, new_private_key_pem(), replace=False)


def replace_key_file(path: Path, pem: str) -> None:
    """Make ``pem`` the current key: written beside it, then put in its place at once."""
    write_private_file(path, pem)


def retire_key(directory: Path, pem: str, *, at: datetime.datetime) -> Path:
    """Keep ``pem`` as a key retired at ``at`` (UTC); the new file's path."""
    path = directory / f"{_PREFIX}{at.astimezone(datetime.UTC).strftime(_STAMP)}.pem"
    if not write_private_file(path, pem, replace=False):
        raise FileExistsError(f"a key retired at the same moment is already kept as {path}")
    return path


def retired_at(path: Path) -> datetime.datetime | None:
    """When the key in ``path`` was retired, from its name; None for any other file."""
    if not (path.name.startswith(_PREFIX) and path.suffix == ".pem"):
        return None
    try:
        moment = datetime.datetime.strptime(path.stem[len(_PREFIX) :], _STAMP)
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.UTC)


def retired_keys(directory: Path) -> list[tuple[datetime.datetime, Path]]:
    """The retired keys in ``directory``, oldest first, with their retirement moments."""
    if not directory.is_dir():
        return []
    found = [(retired_at(path), path) for path in directory.iterdir()]
    return sorted((moment, path) for moment, path in found if moment is not None)


def published_retired_keys(
    directory: Path,
    *,
    overlap: datetime.timedelta,
    current: str,
    now: datetime.datetime | None = None,
) -> list[str]:
    """The PEMs of the keys retired less than ``overlap`` ago, newest first, leaving out
    one equal to ``current`` (a rotation stopped between its two writes)."""
    now = now or datetime.datetime.now(datetime.UTC)
    keys = []
    for moment, path in reversed(retired_keys(directory)):
        if now - moment >= overlap:
            break
        pem = path.read_text(encoding="ascii")
        if pem.strip() != current.strip() and pem not in keys:
            keys.append(pem)
    return keys


def expired_retired_keys(
    directory: Path, *, overlap: datetime.timedelta, now: datetime.datetime
) -> list[Path]:
    """The retired keys whose overlap is over (no ID token they signed is still valid)."""
    return [path for moment, path in retired_keys(directory) if now - moment >= overlap]
