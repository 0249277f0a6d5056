"""Pure helpers for second factors: code formats, hashing, QR codes. No database writes."""

from __future__ import annotations

import hashlib
import re
import secrets
from base64 import b32encode
from binascii import unhexlify

import segno

BACKUP_CODE_COUNT = 10
_BACKUP_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_BACKUP_PATTERN = re.compile(r"^[a-z2-7]{10}$")
_TOTP_PATTERN = re.compile(r"^[0-9]{6}$")
MAX_CODE_INPUT = 64


def normalize_code(raw: object) -> str:
    """Lower-case, without spaces and dashes: how codes are compared."""
    if not isinstance(raw, str | int):
        return ""
    return re.sub(r"[\s-]", "", str(raw)).lower()


def is_totp_code(code: str) -> bool:
    return bool(_TOTP_PATTERN.match(code))


def is_backup_code(code: str) -> bool:
    return bool(_BACKUP_PATTERN.match(code))


def new_backup_codes(count: int = BACKUP_CODE_COUNT) -> list[str]:
    """Fresh random codes (50 bits each), formatted ``abcde-fghij`` for reading aloud."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_backup_code(code: str) -> str:
    """SHA-256 of the normalized code; the only form in which a backup code is kept."""
    return hashlib.sha256(normalize_code(code).encode("ascii", "ignore")).hexdigest()


def base32_secret(hex_key: str) -> str:
    """The TOTP secret as authenticator apps expect it for manual entry."""
    return b32encode(unhexlify(hex_key)).decode("ascii").rstrip("=")


def qr_svg_data_uri(text: str) -> str:
    """A QR code drawn locally (segno) as an SVG data URI: no external service sees it."""
    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))
