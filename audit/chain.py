"""The hash chain's canonical form: pure functions shared by append and verify.

An event's hash is SHA-256 over the UTF-8 bytes of a canonical JSON object of
the fields in ``HASHED_FIELDS`` (keys sorted, no whitespace, non-ASCII kept),
where ``prev_hash`` is the previous event's hash (``GENESIS_HASH`` for the
first event). docs/audit.md states the same rules for auditors.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "ip",
    "user_agent",
    "details",
    "prev_hash",
)


def canonical_time(moment: datetime) -> str:
    """UTC, microseconds, ``+00:00``: the one textual form of an event's time."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8: the same bytes for the same data."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def event_hash(fields: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an event's hashed fields."""
    payload = {name: fields[name] for name in HASHED_FIELDS}
    if isinstance(payload["created_at"], datetime):
        payload["created_at"] = canonical_time(payload["created_at"])
    return hashlib.sha256(canonical_json(payload)).hexdigest()
