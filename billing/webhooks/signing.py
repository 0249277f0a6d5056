"""The ``Tillit-Signature`` header: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``.

During a roll's overlap one ``v1`` per live secret is sent (the new one first), so a
receiver that still holds the old secret verifies, and one that holds the new one too.
docs/webhooks.md gives receivers the matching verification function.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "Tillit-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under the secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header's value: the timestamp, then a ``v1`` for each secret in order."""
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in secrets]
    return ",".join(parts)
