"""A backup's manifest: what it holds and the SHA-256 of each file, signed (Ed25519).

``manifest.json`` is canonical JSON (sorted keys, no spaces); ``manifest.sig`` holds the
signature over exactly those bytes with the audit checkpoint key, and that key's id.
Restoring refuses a manifest whose signature does not verify with a trusted key
(``audit.keys.trusted_public_keys``: the current key and AUDIT_TRUSTED_PUBLIC_KEYS).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.exceptions import AuditKeyError, BackupError
from audit.keys import (
    key_id_for,
    load_signing_key,
    public_key_hex,
    signature_is_valid,
    trusted_public_keys,
)

FORMAT = "tillit-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def write_signed(folder: Path, data: dict[str, Any]) -> bytes:
    """Write ``manifest.json`` and its signature into ``folder``; the manifest's bytes."""
    body = canonical({"format": FORMAT, **data})
    try:
        key = load_signing_key()
    except AuditKeyError as exc:
        raise BackupError(f"manifest: cannot be signed: {exc}") from exc
    public_hex = public_key_hex(key)
    signature = {
        "key_id": key_id_for(public_hex),
        "public_key": public_hex,
        "signature": key.sign(body).hex(),
    }
    (folder / MANIFEST).write_bytes(body)
    (folder / SIGNATURE).write_bytes(canonical(signature))
    return body


def read_verified(folder: Path) -> dict[str, Any]:
    """The manifest of the backup in ``folder``, once its signature verifies with a trusted key."""
    try:
        body = (folder / MANIFEST).read_bytes()
        signature = json.loads((folder / SIGNATURE).read_bytes())
    except (OSError, ValueError) as exc:
        raise BackupError(f"manifest: {folder} holds no readable signed manifest ({exc})") from exc
    trusted = trusted_public_keys()
    key_id = str(signature.get("key_id", ""))
    public_hex = trusted.get(key_id)
    if public_hex is None:
        raise BackupError(
            f"manifest: signed by key {key_id[:16]}…, which is not trusted here (untrusted key);"
            " restore the key backup first or list it in AUDIT_TRUSTED_PUBLIC_KEYS"
        )
    if not signature_is_valid(public_hex, str(signature.get("signature", "")), body):
        raise BackupError("manifest: the signature does not match (the manifest was changed)")
    data = json.loads(body)
    if data.get("format") != FORMAT:
        raise BackupError(f"manifest: unknown format {data.get('format')!r}")
    return dict(data)


def sha256_hex(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()
