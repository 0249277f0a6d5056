"""The OpenID Connect ID-token signing key's rotation, and the deletion of the keys it
retired once no ID token they signed can still be valid; both audited.

``rotate_signing_key`` keeps the current key as a retired one, puts a new key in its place
(``settings.OIDC_KEY_FILE``) and deletes the retired keys whose overlap
(``OIDC_RETIRED_KEY_HOURS``) is over. The JWKS publishes the current key and the retired
ones inside their overlap, so an ID token signed just before a rotation still verifies. The
web workers read the keys when they start: they sign with the new key once restarted. The
files themselves: ``security.oidc_key_files``. Never logged or printed: a private key.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import record
from security.actors import Actor
from security.exceptions import OidcKeyError
from security.oidc_key_files import (
    expired_retired_keys,
    key_id,
    new_private_key_pem,
    replace_key_file,
    retire_key,
    retired_keys,
)


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the new key's id, the retired key's ("" when there was none),
    and how many retired keys past their overlap it deleted."""

    key_id: str
    retired_key_id: str
    deleted: int


def _files() -> tuple[Path, Path]:
    path, retired = settings.OIDC_KEY_FILE, settings.OIDC_RETIRED_KEYS_DIR
    if path is None or retired is None:
        raise OidcKeyError(
            "the ID-token signing key is not kept in a file here (OIDC_RSA_PRIVATE_KEY is set"
            " inline, or production names no OIDC_RSA_PRIVATE_KEY_FILE): set"
            " OIDC_RSA_PRIVATE_KEY_FILE to rotate it with this command"
        )
    return Path(path), Path(retired)


def _overlap() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.OIDC_RETIRED_KEY_HOURS)


def _delete(paths: list[Path]) -> int:
    for path in paths:
        path.unlink(missing_ok=True)
    return len(paths)


def rotate_signing_key(
    *,
    by: Actor,
    compromised: bool = False,
    now: datetime.datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> Rotation:
    """Retire the current key (kept for the overlap), make a new one current, delete the
    retired keys past their overlap; one audit event. The old key is kept before the new
    one replaces it, so a rotation stopped half-way loses no key.

    ``compromised``: the old key and every retired one are deleted instead, so that no ID
    token signed with them verifies once the web workers restart (clients holding a valid
    ID token must sign their user in again)."""
    path, retired_dir = _files()
    now = now or timezone.now()
    say = progress or (lambda _line: None)
    old = path.read_text(encoding="ascii") if path.exists() else ""
    retired_id = key_id(old) if old else ""
    if old and not compromised:
        kept = retire_key(retired_dir, old, at=now)
        hours = settings.OIDC_RETIRED_KEY_HOURS
        say(f"retired key {retired_id}: kept as {kept.name}, published for {hours} h")
    pem = new_private_key_pem()
    new_id = key_id(pem)
    replace_key_file(path, pem)
    say(f"new key {new_id}: in {path}")
    if compromised:
        expired = [kept for _moment, kept in retired_keys(retired_dir)]
        say(f"compromised: key {retired_id or '-'} not kept, every retired key deleted")
    else:
        expired = expired_retired_keys(retired_dir, overlap=_overlap(), now=now)
    deleted = _delete(expired)
    if deleted:
        say(f"deleted {deleted} retired key(s)")
    with transaction.atomic():
        record(
            "security.oidc_signing_key_rotated",
            actor=by,
            key_id=new_id,
            retired_key_id=retired_id,
            retired_keys_deleted=deleted,
            compromised=compromised,
        )
    return Rotation(key_id=new_id, retired_key_id=retired_id, deleted=deleted)


def delete_expired_retired_keys(*, by: Actor, now: datetime.datetime | None = None) -> int:
    """Delete the retired keys past their overlap (no valid ID token needs them); how many
    (audited when any)."""
    _path, retired_dir = _files()
    deleted = _delete(
        expired_retired_keys(retired_dir, overlap=_overlap(), now=now or timezone.now())
    )
    if deleted:
        with transaction.atomic():
            record("security.oidc_retired_keys_deleted", actor=by, count=deleted)
    return deleted
