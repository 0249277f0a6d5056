"""The ID-token signing key's files: the current key and the retired ones beside it.

Plain file work, without Django (config/settings.py reads the keys through it before the
apps load); ``security.services.oidc_keys`` rotates and prunes with it and audits.

- The current key is one PEM file (PKCS #8, RSA 3072 bits), mode 0600, replaced in one
  ``os.replace`` so a reader never sees half a key.
- A retired key is a copy of a key that was current, named for its retirement moment
  (``retired-20261207T163000123456Z.pem``), mode 0600, in its own 0700 directory.
- A retired key is published (its public part in the JWKS) while its retirement is younger
  than the overlap, so an ID token it signed just before the rotation still verifies; after
  that it is only waiting to be deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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


def _write_new_file(path: Path, text: str) -> None:
    """Write ``text`` to a file that must not exist yet, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def create_key_file(path: Path) -> None:
    """Create the current key at ``path`` unless one exists (another process creating it
    at the same moment wins; its key is the one read)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        _write_new_file(path, new_private_key_pem())


def replace_key_file(path: Path, pem: str) -> None:
    """Make ``pem`` the current key: written beside it, then put in its place at once."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.new")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()  # left by a rotation that stopped before its replace
    _write_new_file(staged, pem)
    os.replace(staged, path)


def retire_key(directory: Path, pem: str, *, at: datetime.datetime) -> Path:
    """Keep ``pem`` as a key retired at ``at`` (UTC); the new file's path."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{_PREFIX}{at.astimezone(datetime.UTC).strftime(_STAMP)}.pem"
    _write_new_file(path, pem)
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
